"""Pareto ranking, reference points and knee points: pure numpy, no I/O.

Every function takes a ``(n, k)`` array of objective values plus one ``maximize`` flag per
column, so callers never have to pre-negate anything. Internally the values are turned into a
*minimisation* problem (maximised columns negated); that is the only sign convention here.

Rows with a non-finite value (NaN from a missing metric, inf from a diverged one) cannot be
compared with anything: they get rank ``-1`` and are never on a front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from resnetx.errors import ConfigError

DEFAULT_OBJECTIVES = "val_acc:max,params:min"
UNRANKED = -1
# Objectives spanning orders of magnitude: the knee point is found on log10 axes for these,
# matching the log axis of the accuracy-vs-parameters plot.
LOG_SCALE_OBJECTIVES = frozenset({"params", "flops", "latency_ms"})
TIE_TOLERANCE = 1e-9  # epsilon-net distances closer than this are equal
_DIRECTIONS = {"max": True, "maximize": True, "min": False, "minimize": False}


@dataclass(frozen=True)
class Objective:
    """One metric to optimise: its MLflow metric name and whether larger is better."""

    name: str
    maximize: bool

    def __str__(self) -> str:
        return f"{self.name}:{'max' if self.maximize else 'min'}"


def parse_objectives(text: str, field: str = "--objectives") -> list[Objective]:
    """``"val_acc:max,params:min"`` -> ``[Objective("val_acc", True), Objective("params", False)]``."""
    allowed = "must look like metric:max,metric:min (e.g. val_acc:max,params:min)"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(field, text, allowed)
    out: list[Objective] = []
    for item in text.split(","):
        name, sep, direction = item.strip().partition(":")
        name, direction = name.strip(), direction.strip().lower()
        if not sep or not name or any(c.isspace() for c in name) or direction not in _DIRECTIONS:
            raise ConfigError(field, text, allowed)
        if any(o.name == name for o in out):
            raise ConfigError(field, text, f"lists {name!r} twice; each metric at most once")
        out.append(Objective(name, _DIRECTIONS[direction]))
    return out


def format_objectives(objectives: Sequence[Objective]) -> str:
    return ",".join(str(o) for o in objectives)


def _as_minimisation(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1) if len(maximize) == 1 else arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != len(maximize):
        raise ValueError(f"values must have shape (n, {len(maximize)}); got {arr.shape}")
    signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return arr * signs


def rankable_mask(values: np.ndarray) -> np.ndarray:
    """True for rows whose every objective is finite."""
    arr = np.asarray(values, dtype=float)
    return np.isfinite(arr).all(axis=1) if arr.size else np.zeros(arr.shape[0], dtype=bool)


def dominates_matrix(points: np.ndarray) -> np.ndarray:
    """``D[i, j]`` is True when minimisation point ``i`` dominates ``j`` (<= everywhere, < somewhere)."""
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    return le & lt


def non_dominated_sort(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    """Pareto rank of every row: 0 = the front, 1 = the front once 0 is removed, ...

    Equal points dominate neither each other nor anything the other does not, so duplicates
    always share a rank. Rows with a non-finite value get ``UNRANKED`` (-1). O(n^2 k) with
    numpy, which is instant for the hundreds of trials a sweep produces.
    """
    points = _as_minimisation(values, maximize)
    ranks = np.full(points.shape[0], UNRANKED, dtype=int)
    idx = np.flatnonzero(rankable_mask(points))
    if idx.size == 0:
        return ranks
    dom = dominates_matrix(points[idx])
    remaining = np.ones(idx.size, dtype=bool)
    rank = 0
    while remaining.any():
        # a remaining point is on this front when no remaining point dominates it
        dominated = (dom[remaining][:, remaining]).any(axis=0)
        members = np.flatnonzero(remaining)[~dominated]
        ranks[idx[members]] = rank
        remaining[members] = False
        rank += 1
    return ranks


def normalised(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool],
               log_scale: Sequence[bool] | None = None) -> np.ndarray:
    """Minimisation points scaled to [0, 1] per objective over the given rows (0 = best value).

    ``log_scale`` objectives go on log10 axes first when all their values are positive: a
    network of 20K parameters is as far from one of 40K as 200K is from 400K. An objective
    with one value throughout maps to 0. Rows must be finite.
    """
    points = _as_minimisation(values, maximize).copy()
    if log_scale is not None:
        signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
        for j, use_log in enumerate(log_scale):
            raw = points[:, j] * signs[j]
            if use_log and raw.size and (raw > 0).all():
                points[:, j] = np.log10(raw) * signs[j]
    if points.shape[0] == 0:
        return points
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - lo) / np.where(hi > lo, hi - lo, 1.0)


def epsilon_net_order(points: np.ndarray) -> list[int]:
    """Greedy epsilon-net order of normalised minimisation points (Salinas et al. 2021, as used by
    MO-ASHA, Schmucker et al., arXiv 2106.12639): first the best point on the first objective, then
    again and again the point farthest (Euclidean) from every point chosen so far, so that any
    prefix of the order spreads over the front instead of crowding one end of it. Ties (distances
    within ``TIE_TOLERANCE``, so that float rounding does not decide) go to the earlier row."""
    n = points.shape[0]
    if n == 0:
        return []
    order = [int(np.lexsort(points.T[::-1])[0])]  # best first objective; ties by the next ones
    nearest = np.linalg.norm(points - points[order[0]], axis=1)
    nearest[order[0]] = -np.inf
    while len(order) < n:
        pick = int(np.flatnonzero(nearest >= nearest.max() - TIE_TOLERANCE)[0])  # ties: the earlier row
        order.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[pick], axis=1))
        nearest[order] = -np.inf
    return order


def top_k(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool], k: int,
          log_scale: Sequence[bool] | None = None) -> list[int]:
    """The ``k`` best rows by multi-objective ranking (MO-ASHA's ``top_k``): whole Pareto fronts in
    rank order, and from the first front that does not fit whole, the first rows of its
    epsilon-net order (objectives normalised over that front, ``log_scale`` ones on log axes).
    Rows with a non-finite value are never chosen. Returns row indices, best first."""
    ranks = non_dominated_sort(values, maximize)
    arr = np.asarray(values, dtype=float).reshape(len(ranks), -1) if len(ranks) else np.zeros((0, len(maximize)))
    chosen: list[int] = []
    rank = 0
    while len(chosen) < k:
        members = np.flatnonzero(ranks == rank)
        if members.size == 0:
            break
        if len(chosen) + members.size <= k:
            chosen.extend(int(i) for i in members)
        else:
            order = epsilon_net_order(normalised(arr[members], maximize, log_scale))
            chosen.extend(int(members[i]) for i in order[: k - len(chosen)])
        rank += 1
    return chosen


def pareto_front_mask(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    return non_dominated_sort(values, maximize) == 0


def default_reference(values: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool],
                      margin: float = 0.1) -> np.ndarray:
    """The reference (anti-ideal) point used for hypervolume when none is given.

    Rule: for each objective, the *worst* finite value among the rows, pushed ``margin``
    (10 %) of that objective's range further in the worse direction, so that the extreme
    points of the front still add volume. When all values of an objective are equal the push
    is 10 % of its magnitude (or 1.0 when it is 0). Returned in the objectives' own units and
    directions (a maximised objective's reference is below its minimum).
    """
    points = _as_minimisation(values, maximize)
    points = points[rankable_mask(points)]
    if points.shape[0] == 0:
        raise ValueError("no row with finite values: no reference point can be derived")
    worst, best = points.max(axis=0), points.min(axis=0)
    span = worst - best
    fallback = np.where(worst != 0, np.abs(worst), 1.0)
    push = np.where(span > 0, span, fallback) * margin
    ref_min = worst + push
    signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return ref_min * signs


def knee_point(front: np.ndarray | Sequence[Sequence[float]], maximize: Sequence[bool],
               log_scale: Sequence[bool] | None = None) -> int:
    """Index (into ``front``) of the knee: the best trade-off among non-dominated points.

    Every objective is normalised to [0, 1] over the front (0 = its best value; ``log_scale``
    objectives on log10 axes first, when positive). In 2-D the knee is the point farthest from
    the straight line joining the two extreme points, on the ideal side of it (Das 1999,
    "maximum bulge"); when no point bulges (two points, or a straight front) and for k != 2
    it is the point closest (Euclidean) to the ideal point (0, ..., 0). Ties go to the first.
    """
    points = _as_minimisation(front, maximize).copy()
    if points.shape[0] == 0:
        raise ValueError("knee_point needs at least one point")
    if not rankable_mask(points).all():
        raise ValueError("knee_point needs finite values")
    if log_scale is not None:
        signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
        for j, use_log in enumerate(log_scale):
            raw = points[:, j] * signs[j]
            if use_log and (raw > 0).all():
                points[:, j] = np.log10(raw) * signs[j]
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = (points - lo) / span
    if norm.shape[1] == 2 and norm.shape[0] > 2:
        a, b = norm[np.argmin(norm[:, 0])], norm[np.argmin(norm[:, 1])]
        direction = b - a
        length = float(np.hypot(*direction))
        if length > 0:
            # signed distance, positive on the side of the ideal point (the origin)
            cross = direction[0] * (norm[:, 1] - a[1]) - direction[1] * (norm[:, 0] - a[0])
            ideal_side = np.sign(direction[0] * (0 - a[1]) - direction[1] * (0 - a[0])) or 1.0
            distance = cross * ideal_side / length
            if distance.max() > 1e-12:
                return int(np.argmax(distance))
    return int(np.argmin(np.linalg.norm(norm, axis=1)))
