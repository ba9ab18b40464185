"""A per-trial wall-clock limit that also ends trials which hang without reporting.

Tune's stoppers only look at results, so a trial stuck in a deadlock or a dead data source
would hold its slot forever. Tune asks the scheduler which trial to run at every step of its
loop; these schedulers use that moment to stop every trial that has been running longer than
the limit (``stop_trial`` is part of the controller API Tune hands to schedulers). The actor of
a stopped trial that does not stop by itself is killed after ``TUNE_FORCE_TRIAL_CLEANUP_S``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from reports import schema
from reports.pareto import Objective
from sweep.config.settings import DEFAULT_RUNG_METRIC, RUNG_METRICS


class TrialTimeLimitMixin:
    """Stops trials running longer than ``limit_s`` seconds (timed from when they start running)."""

    limit_s: float | None = None

    def set_time_limit(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self._running_since: dict[str, float] = {}

    def __setstate__(self, state: dict) -> None:  # a restored sweep times trials afresh
        self.__dict__.update(state)
        self._running_since = {}

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        if self.limit_s is not None:
            self._stop_overdue(tune_controller)
        return super().choose_trial_to_run(tune_controller)  # type: ignore[misc]

    def _stop_overdue(self, tune_controller: Any) -> None:
        now = time.monotonic()
        running = {t.trial_id: t for t in tune_controller.get_live_trials() if t.status == Trial.RUNNING}
        self._running_since = {tid: self._running_since.get(tid, now) for tid in running}
        for trial_id, since in list(self._running_since.items()):
            if now - since > self.limit_s:
                self._running_since.pop(trial_id)
                tune_controller.stop_trial(running[trial_id])


class LimitedFIFOScheduler(TrialTimeLimitMixin, FIFOScheduler):
    """First in, first out, with a per-trial time limit."""


class LimitedASHAScheduler(TrialTimeLimitMixin, ASHAScheduler):
    """ASHA early stopping, with a per-trial time limit."""


def accuracy_objective(objectives: Sequence[Objective]) -> Objective:
    """The objective early stopping is about: the first maximised per-epoch metric."""
    return next((o for o in objectives if o.maximize and o.name in schema.EPOCH_METRICS), objectives[0])


def resolved_rung_metric(scheduler: str, rung_metric: str) -> str:
    """``auto`` is the scheduler's measured default (settings.DEFAULT_RUNG_METRIC). (pure)"""
    if rung_metric not in RUNG_METRICS:
        raise ValueError(f"rung_metric: got {rung_metric!r}; must be one of {', '.join(RUNG_METRICS)}")
    return DEFAULT_RUNG_METRIC.get(scheduler, "accuracy") if rung_metric == "auto" else rung_metric


def rung_objectives(objectives: Sequence[Objective], rung_metric: str) -> list[Objective]:
    """The sweep's objectives as a rung compares them: with ``tse`` the accuracy objective is
    replaced by the training-loss sum (minimised); the others (params, FLOPs) stay. (pure)"""
    if rung_metric not in RUNG_METRICS or rung_metric == "auto":
        raise ValueError(f"rung_metric: got {rung_metric!r}; must be accuracy or tse (resolve auto first)")
    if rung_metric == "accuracy":
        return list(objectives)
    accuracy = accuracy_objective(objectives)
    return [Objective(schema.TSE_METRIC, False) if o == accuracy else o for o in objectives]


def make_scheduler(kind: str, objectives: Sequence[Objective], limit_s: float | None, grace_period: int = 1,
                   reduction_factor: float = 2.0, state_path: str | None = None,
                   rung_metric: str = "auto") -> FIFOScheduler:
    """Explicit registry: ``none`` (every trial to the end), ``asha`` (stop on the accuracy objective,
    the first maximised epoch metric, or on ``rung_metric``) or ``moasha`` (stop by non-dominated
    rank over all objectives, the accuracy one replaced by ``rung_metric``). ``auto``: TSE for
    moasha, accuracy for asha (DEFAULT_RUNG_METRIC, measured)."""
    scheduler: FIFOScheduler
    ranked = rung_objectives(objectives, resolved_rung_metric(kind, rung_metric))
    if kind == "asha":
        metric = ranked[list(objectives).index(accuracy_objective(objectives))]
        # time_attr "epoch": a trial reports its last epoch twice when it evaluates the test split
        scheduler = LimitedASHAScheduler(metric=metric.name, mode="max" if metric.maximize else "min",
                                         time_attr="epoch", grace_period=grace_period,
                                         reduction_factor=reduction_factor, max_t=10**6)
    elif kind == "moasha":
        from sweep.tune.moasha import MOASHAScheduler

        scheduler = MOASHAScheduler(ranked, grace_period, reduction_factor, state_path)
    elif kind == "none":
        scheduler = LimitedFIFOScheduler()
    else:
        raise ValueError(f"scheduler: got {kind!r}; must be asha, moasha or none")
    scheduler.set_time_limit(limit_s)  # type: ignore[attr-defined]
    return scheduler
