"""Brute-force references for the Pareto code, written from the definitions in plain Python.

Shared by the tests of ranking (tests/test_pareto.py) and of MO-ASHA's rung rule
(tests/test_moasha.py), so that the implementation is never checked against itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

UNRANKED = -1


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and differs on one."""
    at_least = all((x >= y) if m else (x <= y) for x, y, m in zip(a, b, maximize))
    return at_least and any(x != y for x, y in zip(a, b))


def brute_ranks(values: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Rank by definition: peel the set of rows that no remaining row dominates."""
    rows = [[float(v) for v in row] for row in values]
    ranks = [UNRANKED] * len(rows)
    remaining = {i for i, row in enumerate(rows) if all(math.isfinite(v) for v in row)}
    rank = 0
    while remaining:
        front = {i for i in remaining if not any(dominates(rows[j], rows[i], maximize) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def brute_top_k(values: Sequence[Sequence[float]], maximize: Sequence[bool], k: int,
                log_scale: Sequence[bool]) -> set[int]:
    """MO-ASHA's top-k from the paper's words (Schmucker et al. 2021, section 3): fill with whole
    fronts in rank order; from the front that overflows, take an epsilon-net: objectives scaled
    to [0, 1] over that front (best = 0; log10 first where asked), start at the point best on the
    first objective (ties: next objectives, then the earlier row), then add one by one the point
    whose distance to its nearest chosen point is largest (ties within 1e-9: the earlier row)."""
    ranks = brute_ranks(values, maximize)
    chosen: list[int] = []
    for rank in range(max(ranks, default=-1) + 1):
        members = [i for i, r in enumerate(ranks) if r == rank]
        if len(chosen) == k:
            break
        if len(chosen) + len(members) <= k:
            chosen += members
            continue
        scaled = {}
        for i in members:
            row = []
            for j, m in enumerate(maximize):
                v = float(values[i][j])
                if log_scale[j] and all(float(values[t][j]) > 0 for t in members):
                    v = math.log10(v)
                row.append(-v if m else v)
            scaled[i] = row
        lows = [min(scaled[i][j] for i in members) for j in range(len(maximize))]
        highs = [max(scaled[i][j] for i in members) for j in range(len(maximize))]
        norm = {i: [(scaled[i][j] - lows[j]) / (highs[j] - lows[j]) if highs[j] > lows[j] else 0.0
                    for j in range(len(maximize))] for i in members}
        net = [min(members, key=lambda i: (*norm[i], i))]
        while len(chosen) + len(net) < k:
            rest = [i for i in members if i not in net]
            far = max(min(math.dist(norm[i], norm[c]) for c in net) for i in rest)
            net.append(next(i for i in rest if min(math.dist(norm[i], norm[c]) for c in net) >= far - 1e-9))
        chosen += net
        break
    return set(chosen)
