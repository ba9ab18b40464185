"""The "total depth split across stages" primitive (the seed repository's ``get_num_nodes``).

A ResNetX of ``N`` units over ``S`` stages is a composition of ``N`` into ``S`` parts. The seed
required every stage to hold at least ``2 * (fold - 1)`` units so that a fold never spans more
than one stage boundary; we keep that rule as the default minimum (and never less than 1).

Random splits are uniform over the valid compositions (stars and bars), so no stage is
favoured; enumeration lists them in lexicographic order so grids and counts are stable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator


def min_units_per_stage(fold: int) -> int:
    """The seed's minimum: ``2 * (fold - 1)`` units, and at least one."""
    return max(1, 2 * (fold - 1))


def count_splits(total: int, stages: int, minimum: int) -> int:
    """Number of ways to split ``total`` units over ``stages`` stages of at least ``minimum``."""
    free = total - stages * minimum
    if stages < 1 or free < 0:
        return 0
    return math.comb(free + stages - 1, stages - 1)


def random_split(total: int, stages: int, minimum: int, rng: random.Random) -> tuple[int, ...]:
    """A split drawn uniformly from all valid ones (choose ``stages - 1`` bars among the gaps)."""
    free = total - stages * minimum
    if stages < 1 or free < 0:
        raise ValueError(f"total: got {total}; cannot hold {stages} stages of >= {minimum} units")
    bars = sorted(rng.sample(range(free + stages - 1), stages - 1))
    parts, previous = [], -1
    for bar in [*bars, free + stages - 1]:
        parts.append(bar - previous - 1 + minimum)
        previous = bar
    return tuple(parts)


def all_splits(total: int, stages: int, minimum: int) -> Iterator[tuple[int, ...]]:
    """Every valid split, in lexicographic order."""
    if stages == 1:
        if total >= minimum:
            yield (total,)
        return
    for first in range(minimum, total - minimum * (stages - 1) + 1):
        for rest in all_splits(total - first, stages - 1, minimum):
            yield (first, *rest)
