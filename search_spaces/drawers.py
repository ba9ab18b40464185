"""Drawers: where a field's value comes from when a space is walked.

A space is walked once per point, field by field in dependency order (define-by-run). What
differs between seeded random sampling and an Optuna trial is only *who picks* each value, so
that is the one thing behind this small interface; parameter kinds never know which drawer
they talk to, and the distributions of the adapters cannot drift apart.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import Any, Protocol

from search_spaces.depth import random_split


class Drawer(Protocol):
    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int: ...

    def real(self, name: str, low: float, high: float, step: float | None, log: bool) -> float: ...

    def categorical(self, name: str, values: Sequence[Any]) -> Any: ...

    def split(self, name: str, total: int, stages: int, minimum: int) -> tuple[int, ...]: ...


class RandomDrawer:
    """Seeded sampling from ``random.Random``: the same seed gives the same points."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if not log:
            return self.rng.randrange(low, high + 1, step)
        # as Optuna does: log-uniform over [low - 0.5, high + 0.5], rounded to an integer
        value = round(math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5))))
        return min(max(value, low), high)

    def real(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randrange(math.floor((high - low) / step + 1e-9) + 1)
        return self.rng.uniform(low, high)

    def categorical(self, name: str, values: Sequence[Any]) -> Any:
        return values[self.rng.randrange(len(values))]

    def split(self, name: str, total: int, stages: int, minimum: int) -> tuple[int, ...]:
        return random_split(total, stages, minimum, self.rng)


def _optuna_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


class OptunaDrawer:
    """Optuna define-by-run: every drawn value is a ``trial.suggest_*`` under the field's flat name.

    Non-scalar choices (e.g. ``num_nodes`` lists) are suggested as their JSON text, which Optuna
    stores and shows readably. A depth split is suggested as one integer per stage but the last
    (``model.num_nodes.0``, ...), each bounded so the remaining stages can still be filled.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def integer(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return int(self.trial.suggest_int(name, low, high, step=step, log=log))

    def real(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        return float(self.trial.suggest_float(name, low, high, step=step, log=log))

    def categorical(self, name: str, values: Sequence[Any]) -> Any:
        if all(_optuna_scalar(v) for v in values):
            return self.trial.suggest_categorical(name, list(values))
        texts = [json.dumps(v) for v in values]
        return values[texts.index(self.trial.suggest_categorical(name, texts))]

    def split(self, name: str, total: int, stages: int, minimum: int) -> tuple[int, ...]:
        parts, remaining = [], total
        for i in range(stages - 1):
            high = remaining - minimum * (stages - 1 - i)
            parts.append(self.integer(f"{name}.{i}", minimum, high, 1, False))
            remaining -= parts[-1]
        return (*parts, remaining)
