"""Live sweep progress in the terminal, instead of Ray's raw status tables.

One line per event worth knowing (a trial finished, failed, diverged) and a heartbeat line at
most every ``every_s`` seconds: trials running / finished / failed, best accuracy so far, size
of the current Pareto front, elapsed time and what is left of the time budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.experiment import Trial
from rich.console import Console

from reports.pareto import Objective, non_dominated_sort
from sweep.search.core import objective_values
from sweep.search.statuses import (
    is_completed_status,
    is_rankable_status,
    result_has_accuracy,
    trial_epochs,
    trial_status,
)


def front_size(values: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> int:
    """Number of non-dominated points among the rankable (trained to the end) trials' objective values."""
    if not values:
        return 0
    ranks = non_dominated_sort(np.asarray(values, dtype=float), [o.maximize for o in objectives])
    return int((ranks == 0).sum())


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:d}:{secs:02d}"


class SweepProgress(Callback):
    """Prints sweep progress; holds only counters, so it pickles with the Tuner."""

    def __init__(self, objectives: Sequence[Objective], num_samples: int, time_budget_s: float | None,
                 accuracy_key: str = "val_acc", every_s: float = 10.0) -> None:
        self.objectives, self.num_samples, self.time_budget_s = list(objectives), num_samples, time_budget_s
        self.accuracy_key, self.every_s = accuracy_key, every_s
        self._reset()

    def _reset(self) -> None:
        self.started = time.monotonic()
        self.last_print = 0.0
        self.best: float | None = None
        self.done: dict[str, str] = {}
        self.values: dict[str, list[float]] = {}
        self.running: set[str] = set()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_console"}

    @property
    def console(self) -> Console:
        if getattr(self, "_console", None) is None:
            self._console = Console(stderr=False, highlight=False)
        return self._console

    def setup(self, **info: Any) -> None:
        self._reset()
        self._counted_earlier = False

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.running.add(trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        self.running.add(trial.trial_id)
        acc = result.get(self.accuracy_key)
        if isinstance(acc, (int, float)) and acc == acc and result_has_accuracy(result):
            self.best = acc if self.best is None else max(self.best, float(acc))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._complete(trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._complete(trial, errored=True)

    def _record(self, trial: Trial, errored: bool) -> tuple[str, list[float] | None]:
        self.running.discard(trial.trial_id)
        last = trial.last_result or {}
        status = trial_status(last, trial_epochs(trial.config), errored)
        self.done[trial.trial_id] = status
        values = objective_values(last, self.objectives) if not errored else None
        if values is not None and is_rankable_status(status):  # a stopped trial's rung values: not on the front
            self.values[trial.trial_id] = values
            acc = last.get(self.accuracy_key)
            if isinstance(acc, (int, float)) and acc == acc:
                self.best = acc if self.best is None else max(self.best, float(acc))
        return status, values

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """A resumed sweep starts with trials that ended before the interruption: count them."""
        if getattr(self, "_counted_earlier", False):
            return
        self._counted_earlier = True
        for trial in trials:
            if trial.status in (Trial.TERMINATED, Trial.ERROR) and trial.trial_id not in self.done:
                self._record(trial, errored=trial.status == Trial.ERROR)

    def _complete(self, trial: Trial, errored: bool) -> None:
        status, values = self._record(trial, errored)
        shown = ", ".join(f"{o.name}={v:.4g}" for o, v in zip(self.objectives, values)) if values else ""
        self.console.print(f"  trial {trial.trial_id} {status} {shown}".rstrip(), soft_wrap=True)
        self._print_status(force=True)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        self._print_status(force=False)

    def status_line(self) -> str:
        elapsed = time.monotonic() - self.started
        finished = sum(1 for s in self.done.values() if is_completed_status(s))
        failed = len(self.done) - finished
        best = f"{self.best:.4f}" if self.best is not None else "-"
        budget = f" | left {_clock(max(0.0, self.time_budget_s - elapsed))}" if self.time_budget_s else ""
        return (f"[{_clock(elapsed)}] trials {len(self.done)}/{self.num_samples} done: {finished} ok, "
                f"{failed} failed | running {len(self.running)} | best {self.accuracy_key} {best} | "
                f"front {front_size(list(self.values.values()), self.objectives)}{budget}")

    def _print_status(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self.last_print >= self.every_s:
            self.last_print = now
            self.console.print(self.status_line(), soft_wrap=True)
