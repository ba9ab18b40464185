"""The confirm stage's statistics against independent computations: a t table, brute-force
dominance loops written here, and the bootstrap's exact distribution by enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from reports import confirm, schema
from reports.pareto import parse_objectives
from resnetx.errors import ConfigError
from search_spaces.schema import SpaceFile

OBJECTIVES = parse_objectives("val_acc:max,params:min")


def brute_dominated(a, b):
    """(acc, params) a is dominated by b: b at least as accurate and as small, better in one."""
    return b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1])


def test_t_interval_matches_the_t_table():
    # Student t quantiles t(0.975, df) from any statistics table: df 2 -> 4.303, df 4 -> 2.776
    mean, low, high = confirm.t_interval([0.90, 0.91, 0.92])
    assert mean == pytest.approx(0.91)
    assert high - mean == pytest.approx(4.303 * 0.01 / 3 ** 0.5, rel=1e-3)
    values = [0.80, 0.82, 0.81, 0.85, 0.79]
    sd = (sum((v - 0.814) ** 2 for v in values) / 4) ** 0.5
    _, low, high = confirm.t_interval(values)
    assert (high - low) / 2 == pytest.approx(2.776 * sd / 5 ** 0.5, rel=1e-3)
    assert np.isnan(confirm.t_interval([0.9])[1])


@pytest.mark.parametrize("seed", range(5))
def test_front_and_within_noise_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    values = np.column_stack([rng.uniform(0.8, 0.9, 30).round(3), rng.integers(1, 40, 30) * 1000])
    front = [i for i in range(30) if not any(brute_dominated(values[i], values[j]) for j in range(30) if j != i)]
    assert confirm.candidates(values, OBJECTIVES, "front") == front
    noise = 0.01
    lifted = [i for i in range(30)
              if not any(brute_dominated((values[i][0] + noise, values[i][1]), values[j]) for j in range(30) if j != i)]
    got = confirm.candidates(values, OBJECTIVES, "within-noise", noise)
    assert got == lifted
    assert set(front) <= set(got)
    assert confirm.candidates(values, OBJECTIVES, "within-noise", 0.0) == front
    assert len(confirm.candidates(values, OBJECTIVES, "top-7")) == 7


def test_within_noise_takes_a_member_that_lost_by_noise():
    values = np.array([[0.900, 100], [0.895, 100], [0.850, 100], [0.880, 50]])
    assert confirm.candidates(values, OBJECTIVES, "front") == [0, 3]
    assert confirm.candidates(values, OBJECTIVES, "within-noise", 0.006) == [0, 1, 3]


def test_bad_rules_are_one_line_errors():
    for rule in ("top-0", "best", "top-x"):
        with pytest.raises(ConfigError, match="must be front, top-K"):
            confirm.candidates(np.array([[0.9, 1.0]]), OBJECTIVES, rule)
    with pytest.raises(ConfigError, match="within-noise needs the seed noise"):
        confirm.candidates(np.array([[0.9, 1.0]]), OBJECTIVES, "within-noise", None)
    with pytest.raises(ConfigError, match="candidates"):
        SpaceFile(confirm={"candidates": "top-0"})
    with pytest.raises(ConfigError, match=r"train\.seed"):
        SpaceFile(final={"train": {"seed": 3}})
    with pytest.raises(ConfigError, match=r"data\.sizee"):
        SpaceFile(final={"data": {"sizee": 28}})


def exact_share(a_seeds, b_seeds):
    """P(mean of a bootstrap draw of a >= that of b), every draw of 3 seeds with replacement
    equally likely (27 ordered draws each): two networks of equal size, ties keep both on the front."""
    draws_a = [np.mean(d) for d in itertools.product(a_seeds, repeat=len(a_seeds))]
    draws_b = [np.mean(d) for d in itertools.product(b_seeds, repeat=len(b_seeds))]
    return np.mean([x >= y for x in draws_a for y in draws_b])


def runs_frame(networks: dict[str, tuple[list[float], int]]) -> pd.DataFrame:
    rows = []
    for network, (accs, params) in networks.items():
        for i, acc in enumerate(accs):
            rows.append({schema.TAG_MODEL_HASH: network, "run_id": f"{network}-{i}", "val_acc": acc + 0.01,
                         "test_acc": acc, "params": float(params), schema.TAG_STATUS: schema.STATUS_FINISHED})
    return pd.DataFrame(rows)


def test_bootstrap_share_matches_the_exact_enumeration():
    a, b = [0.90, 0.92, 0.88], [0.91, 0.89, 0.87]
    confirmed = confirm.summarise(runs_frame({"a": (a, 1000), "b": (b, 1000)}), OBJECTIVES, resamples=4000, seed=1)
    table = confirmed.table.set_index(schema.TAG_MODEL_HASH)
    assert confirmed.metric == "test_acc"
    assert table.loc["a", "front_share"] == pytest.approx(exact_share(a, b), abs=0.03)
    assert table.loc["b", "front_share"] == pytest.approx(exact_share(b, a), abs=0.03)
    assert table.loc["a", "mean"] == pytest.approx(0.90) and table.loc["a", "seeds"] == 3
    assert bool(table.loc["a", "on_front"]) and not bool(table.loc["b", "on_front"])


def test_a_network_better_at_every_seed_is_always_on_the_front_and_the_other_never():
    frame = runs_frame({"big": ([0.95, 0.96, 0.94], 500), "worse": ([0.90, 0.91, 0.89], 900),
                        "small": ([0.80, 0.81, 0.82], 100)})
    frame.loc[len(frame)] = {**frame.iloc[0].to_dict(), "run_id": "failed", "test_acc": 0.1,
                             schema.TAG_STATUS: schema.STATUS_FAILED}
    table = confirm.summarise(frame, OBJECTIVES, resamples=500).table.set_index(schema.TAG_MODEL_HASH)
    assert table.loc["big", "front_share"] == 1.0 and table.loc["small", "front_share"] == 1.0
    assert table.loc["worse", "front_share"] == 0.0
    assert table.loc["big", "seeds"] == 3  # the failed run is not a seed
    best = confirm.best_seed_rows(frame, confirm.summarise(frame, OBJECTIVES, resamples=10))
    assert list(best["run_id"]) == ["small-2", "big-1"]  # front order (by params), best val_acc seed each


def test_pareto_front_of_a_confirm_frame_ranks_networks_on_their_seed_means():
    from reports.frames import pareto_front

    # "lucky" has one seed (0.95) that would stand on a per-run front, but its mean (0.7867)
    # is below that of the smaller "steady" (0.81): on the front of the means it is dominated.
    frame = runs_frame({"steady": ([0.80, 0.81, 0.82], 100), "lucky": ([0.70, 0.71, 0.95], 200),
                        "big": ([0.90, 0.90, 0.91], 300)})
    frame[schema.TAG_STAGE] = schema.STAGE_CONFIRM
    per_run = pareto_front(frame.drop(columns=schema.TAG_STAGE), "test_acc:max,params:min")
    assert "lucky-2" in set(per_run["run_id"])  # the per-run front the confirm frame must not give
    front = pareto_front(frame)  # default objectives: test accuracy, as the report
    assert list(front[schema.TAG_MODEL_HASH]) == ["steady", "big"]
    assert list(front["test_acc"]) == pytest.approx([0.81, (0.90 + 0.90 + 0.91) / 3])
    assert list(front["seeds"]) == [3, 3]
    assert front["high"].iloc[0] - 0.81 == pytest.approx(4.303 * 0.01 / 3 ** 0.5, rel=1e-3)  # t table, df 2
    named = pareto_front(frame, "val_acc:max,params:min")  # named objectives are kept as given
    assert list(named["val_acc"]) == pytest.approx([0.82, (0.91 + 0.91 + 0.92) / 3])
    assert "lucky" not in set(named[schema.TAG_MODEL_HASH])
