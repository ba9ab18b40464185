"""The sweep's schedulers by ``--scheduler`` name: FIFO, ASHA and MO-ASHA, each with the per-trial time limit."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from reports import schema
from reports.pareto import Objective
from sweep.config.experiment import TrainConfig
from sweep.config.settings import DEFAULT_RUNG_METRIC, RUNG_METRICS
from sweep.tune.moasha import MOASHAScheduler
from sweep.tune.time_limit import TrialTimeLimitMixin


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


# train.warmup_epochs of a trial config that does not set it
DEFAULT_WARMUP_EPOCHS: float = TrainConfig.model_fields["warmup_epochs"].default


def default_grace_period(warmup_epochs: float) -> int:
    """The first rung when the user gives no ``--grace-period``: the first epoch with no learning-rate
    warm-up in it, ``ceil(warmup_epochs) + 1`` (1 without warm-up, 2 after one warm-up epoch).
    During the warm-up validation accuracy ranks networks no better than chance on the recorded
    benchmarks (docs/benchmarks.md, "Rung signals"). (pure)"""
    if not warmup_epochs >= 0:
        raise ValueError(f"warmup_epochs: got {warmup_epochs!r}; must be >= 0")
    return math.ceil(warmup_epochs) + 1


def resolved_grace_period(grace_period: int | None, warmup_epochs: float) -> int:
    """A user's explicit grace period wins; ``None`` (the default, "auto") is
    :func:`default_grace_period` of the trials' warm-up. (pure)"""
    return default_grace_period(warmup_epochs) if grace_period is None else grace_period


def make_scheduler(kind: str, objectives: Sequence[Objective], limit_s: float | None, grace_period: int | None = None,
                   reduction_factor: float = 2.0, state_path: str | None = None,
                   rung_metric: str = "auto", warmup_epochs: float = DEFAULT_WARMUP_EPOCHS) -> FIFOScheduler:
    """Explicit registry: ``none`` (every trial to the end), ``asha`` (stop on the accuracy objective,
    the first maximised epoch metric, or on ``rung_metric``) or ``moasha`` (stop by non-dominated
    rank over all objectives, the accuracy one replaced by ``rung_metric``). ``auto``: TSE for
    moasha, accuracy for asha (DEFAULT_RUNG_METRIC, measured). ``grace_period`` None: the first
    epoch after the trials' ``warmup_epochs`` (:func:`default_grace_period`)."""
    scheduler: FIFOScheduler
    ranked = rung_objectives(objectives, resolved_rung_metric(kind, rung_metric))
    grace_period = resolved_grace_period(grace_period, warmup_epochs)
    if kind == "asha":
        metric = ranked[list(objectives).index(accuracy_objective(objectives))]
        # time_attr "epoch": every report is one epoch (test_acc rides on the last one, never a second report)
        scheduler = LimitedASHAScheduler(metric=metric.name, mode="max" if metric.maximize else "min",
                                         time_attr="epoch", grace_period=grace_period,
                                         reduction_factor=reduction_factor, max_t=10**6)
    elif kind == "moasha":
        scheduler = MOASHAScheduler(ranked, grace_period, reduction_factor, state_path)
    elif kind == "none":
        scheduler = LimitedFIFOScheduler()
    else:
        raise ValueError(f"scheduler: got {kind!r}; must be asha, moasha or none")
    scheduler.set_time_limit(limit_s)  # type: ignore[attr-defined]
    return scheduler
