"""Pareto ranks, hypervolume and knee point against brute force on random data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reports.hypervolume import hypervolume, hypervolume_curve, normalised_hypervolume
from reports.pareto import (
    UNRANKED,
    Objective,
    default_reference,
    knee_point,
    non_dominated_sort,
    parse_objectives,
)
from resnetx.errors import ConfigError
from tests.support.brute import brute_ranks as _brute_ranks

# -- brute force references ---------------------------------------------------------------


def brute_ranks(values, maximize):
    """Rank by definition (tests/support/brute.py)."""
    return np.array(_brute_ranks(values, maximize))


def brute_hypervolume(points, reference, maximize):
    """Exact volume on the grid of all distinct coordinates: a cell counts when some point dominates it."""
    pts = [p for p in np.asarray(points, float) if np.isfinite(p).all()]
    ref = np.asarray(reference, float)
    k = len(ref)
    flip = np.where(np.asarray(maximize), -1.0, 1.0)
    pts = [p * flip for p in pts]
    ref = ref * flip
    pts = [p for p in pts if (p < ref).all()]
    if not pts:
        return 0.0
    axes = [np.unique(np.concatenate([[p[d] for p in pts], [ref[d]]])) for d in range(k)]
    total = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        lower = np.array([axes[d][c] for d, c in enumerate(cell)])
        if any((p <= lower).all() for p in pts):
            total += float(np.prod([axes[d][c + 1] - axes[d][c] for d, c in enumerate(cell)]))
    return total


def random_values(rng, n, k, *, ties=True, nan_rows=0):
    values = rng.integers(0, 5, size=(n, k)).astype(float) if ties else rng.random((n, k))
    if n > 2 and ties:
        values[-1] = values[0]  # an exact duplicate
    for i in rng.choice(n, size=min(nan_rows, n), replace=False):
        values[i, rng.integers(k)] = np.nan
    return values


# -- parse_objectives ---------------------------------------------------------------------


def test_parse_objectives():
    assert parse_objectives("val_acc:max,params:min") == [Objective("val_acc", True), Objective("params", False)]
    assert parse_objectives(" latency_ms : MIN ") == [Objective("latency_ms", False)]
    for bad in ["", "val_acc", "val_acc:up", ":max", "val_acc:max,", "val acc:max", "a:max,a:min"]:
        with pytest.raises(ConfigError) as info:
            parse_objectives(bad)
        assert "\n" not in str(info.value) and str(info.value).startswith("--objectives")


# -- non-dominated sorting ----------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("ties", [True, False])
def test_non_dominated_sort_matches_brute_force(k, ties):
    rng = np.random.default_rng(100 * k + ties)
    for _ in range(25):
        n = int(rng.integers(1, 30))
        values = random_values(rng, n, k, ties=ties, nan_rows=int(rng.integers(0, 3)))
        maximize = list(rng.random(k) < 0.5)
        np.testing.assert_array_equal(non_dominated_sort(values, maximize), brute_ranks(values, maximize))


def test_ranks_edge_cases():
    assert non_dominated_sort(np.empty((0, 2)), [True, False]).tolist() == []
    assert non_dominated_sort([[0.5, 100]], [True, False]).tolist() == [0]
    # duplicates share a rank; a NaN row is unranked and does not block anything
    values = [[0.9, 10], [0.9, 10], [0.8, 20], [np.nan, 1], [0.95, np.inf]]
    assert non_dominated_sort(values, [True, False]).tolist() == [0, 0, 1, UNRANKED, UNRANKED]
    # mixed directions: params minimised, accuracy maximised
    values = [[0.9, 100], [0.8, 10], [0.7, 50], [0.95, 1000]]
    assert non_dominated_sort(values, [True, False]).tolist() == [0, 0, 1, 0]
    assert non_dominated_sort(values, [False, True]).tolist() == [0, 1, 0, 0]


# -- hypervolume --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_hypervolume_matches_brute_force(k):
    rng = np.random.default_rng(7 + k)
    for trial in range(20):
        n = int(rng.integers(1, 9 if k == 4 else 14))
        values = random_values(rng, n, k, ties=bool(trial % 2), nan_rows=int(rng.integers(0, 2)))
        maximize = list(rng.random(k) < 0.5)
        if not np.isfinite(values).all(axis=1).any():
            continue
        reference = default_reference(values, maximize)
        expected = brute_hypervolume(values, reference, maximize)
        assert hypervolume(values, reference, maximize) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_hypervolume_known_values():
    # 2-D: acc max, params min; reference (0, 10): staircase areas 0.5*8 + (0.8-0.5)*5
    values = [[0.5, 2], [0.8, 5], [0.4, 6]]
    assert hypervolume(values, [0.0, 10.0], [True, False]) == pytest.approx(0.5 * 8 + 0.3 * 5)
    # a single point is its box; a point outside the reference adds nothing
    assert hypervolume([[1, 1, 1]], [3, 4, 5], [False] * 3) == pytest.approx(2 * 3 * 4)
    assert hypervolume([[4, 1, 1]], [3, 4, 5], [False] * 3) == 0.0
    assert hypervolume([[np.nan, 1]], [3, 4], [False, False]) == 0.0


def test_default_reference_rule():
    values = np.array([[0.5, 100.0], [0.9, 1100.0], [np.nan, 5.0]])
    ref = default_reference(values, [True, False])
    # worst value pushed by 10% of the range, in the worse direction; NaN rows ignored
    np.testing.assert_allclose(ref, [0.5 - 0.04, 1100 + 100])
    np.testing.assert_allclose(default_reference([[2.0, 0.0]], [True, False]), [1.8, 0.1])


def test_hypervolume_curve_monotone_and_exact():
    rng = np.random.default_rng(3)
    values = rng.random((25, 3))
    values[4] = np.nan
    maximize = [True, False, True]
    reference = default_reference(values, maximize)
    curve = hypervolume_curve(values, maximize)
    assert len(curve) == 25
    assert all(b >= a for a, b in itertools.pairwise(curve))
    for t in (1, 5, 13, 25):
        assert curve[t - 1] == pytest.approx(brute_hypervolume(values[:t], reference, maximize))
    assert hypervolume_curve(np.full((3, 2), np.nan), [True, False]) == [0.0, 0.0, 0.0]
    assert normalised_hypervolume(curve[-1], values, reference, maximize) <= 1.0


# -- knee point ---------------------------------------------------------------------------


def test_knee_point_2d_max_bulge():
    # acc max, params min: the middle point bulges towards the ideal corner
    front = [[0.70, 1e4], [0.90, 1e5], [0.92, 1e6], [0.93, 1e7]]
    assert knee_point(front, [True, False], log_scale=[False, True]) == 1
    # a single point and two points (no bulge: closest to the ideal point)
    assert knee_point([[0.5, 3.0]], [True, False]) == 0
    assert knee_point([[0.5, 1.0], [0.9, 1.5]], [True, False]) == 0  # symmetric once normalised: first wins


def test_knee_point_3d_closest_to_ideal():
    front = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.6, 0.6], [0.0, 0.0, 1.0]]
    assert knee_point(front, [True, True, True]) == 2
    with pytest.raises(ValueError):
        knee_point([[np.nan, 1.0]], [True, False])


def recomputed_curve(values, maximize, reference):
    """The former implementation, kept as the oracle: the whole volume recomputed at every prefix."""
    return [hypervolume(np.asarray(values[: i + 1], dtype=float), reference, maximize) for i in range(len(values))]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_incremental_hypervolume_curve_equals_recomputing_it(k):
    rng = np.random.default_rng(k)
    for trial in range(25):
        n = int(rng.integers(1, 40))
        values = rng.random((n, k)).round(2)  # rounding makes ties and duplicates
        values[rng.random(n) < 0.1] = np.nan  # failed trials
        maximize = [bool(b) for b in rng.integers(0, 2, k)]
        reference = [0.0 if m else 1.0 for m in maximize]
        if trial % 3 == 0:  # a reference inside the cloud: some points add nothing
            reference = [0.3 if m else 0.7 for m in maximize]
        expected = recomputed_curve(values, maximize, reference)
        assert np.allclose(hypervolume_curve(values, maximize, reference), expected, rtol=1e-12, atol=1e-12)
