"""Replay a whole sweep against a record in milliseconds: the sweep's own searcher and scheduler, simulated time.

A replayed Ray Tune sweep (``--trainable replay``) is the real thing, MLflow runs and report
included, and takes tens of seconds; a study of 5 strategies x 20 seeds needs hundreds of sweeps.
Like Syne Tune's simulator backend, this drives the *same objects* a sweep hands to Tune (the
:class:`~sweep.tune.searcher.ResNetXSearcher` with its proposer, budgets and de-duplication; the
scheduler from :func:`~sweep.tune.schedulers.make_scheduler`: ASHA, MO-ASHA or none) through the
calls Tune makes, in the order Tune makes them (``TuneController._process_trial_result``):

- a free worker asks the searcher for a trial (``suggest``; the scheduler's ``on_trial_add``);
- each recorded epoch ends at simulated time ``start + sum(epoch_time_s)``; the earliest one is
  processed first: ``scheduler.on_trial_result``; on CONTINUE ``searcher.on_trial_result``; on
  STOP, or after the last epoch, ``scheduler.on_trial_complete`` and
  ``searcher.on_trial_complete`` with the last result, and the worker is free again.

Compute is the sum of the epoch times of every epoch run (what the record says they cost), so
a stopped trial costs only the epochs it ran. ``tests/test_replay_sweep.py`` checks that the
simulator and a real replayed sweep run the same trials to the same epochs with one worker. With
several, the simulator orders events by simulated time, a real replay (which does not sleep) by
arrival: the same events, in an order only the simulator makes deterministic
(``tests/test_determinism.py`` runs two simulated workers).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from reports import schema
from reports.pareto import Objective
from resnetx.errors import ConfigError
from sweep.search.statuses import trial_epochs
from sweep.tracking.record import Record
from sweep.tune.replay import replay_reports

LIMIT_SLACK = 1e-9


@dataclass
class SimulatedTrial:
    """What the schedulers read of a Tune trial (``trial_id``, ``config``), and how it ended."""

    trial_id: str
    config: dict
    key: str = ""
    epochs_run: int = 0
    status: str = schema.STATUS_RUNNING
    last: dict = field(default_factory=dict)
    compute_at_end: float = 0.0  # the sweep's compute (simulated seconds) when this trial ended
    time_at_end: float = 0.0  # simulated wall-clock time when it ended


@dataclass
class Simulation:
    """The trials of one simulated sweep, in the order they ended, and what it cost."""

    trials: list[SimulatedTrial]
    compute: float  # sum of the epoch times of every epoch run
    wall_time: float  # simulated: with ``workers`` trials at a time
    stop_reason: str

    def finished(self) -> list[SimulatedTrial]:
        """Trials that ran to their last epoch: the ones a report ranks (``schema.RANKABLE_STATUSES``)."""
        return [t for t in self.trials if t.status in schema.RANKABLE_STATUSES]


class _Controller:
    """The controller argument Tune passes to scheduler hooks; our schedulers use only these."""

    def __init__(self) -> None:
        self.live: dict[str, SimulatedTrial] = {}

    def get_live_trials(self) -> list[SimulatedTrial]:
        return list(self.live.values())

    def stop_trial(self, trial: SimulatedTrial) -> None:  # the per-trial time limit (not simulated)
        raise NotImplementedError("trial time limits are not simulated")


def simulate_sweep(record: Record, searcher: Any, scheduler: TrialScheduler, *, num_samples: int, workers: int = 2,
                   compute_limit: float | None = None, primary_replicate: bool = False) -> Simulation:
    """Run ``searcher`` and ``scheduler`` over ``record`` until ``num_samples`` trials, the searcher's end,
    or ``compute_limit`` simulated seconds of compute (trials still running then are cut off).

    ``primary_replicate``: replay every network's primary replicate whatever seed the searcher gave
    it (a study compares strategies against the true front, which is the primary replicate's; by
    default a trial replays the replicate of its own seed, as ``--trainable replay`` does)."""
    if workers < 1:
        raise ConfigError("workers", workers, "must be >= 1")
    searcher.set_max_concurrency(workers)
    controller = _Controller()
    events: list[tuple[float, int, str]] = []  # (simulated time an epoch ends, tie-break, trial id)
    reports: dict[str, list[dict]] = {}
    ended: list[SimulatedTrial] = []
    now, compute, order, started, stop_reason = 0.0, 0.0, 0, 0, "num_samples trials ran"
    exhausted = False

    def start_trials() -> None:
        nonlocal started, order, exhausted
        while len(controller.live) < workers and started < num_samples and not exhausted:
            trial_id = f"sim_{started:05d}"
            config = searcher.suggest(trial_id)
            if config is None:
                return
            if config == Searcher.FINISHED:
                exhausted = True
                return
            started += 1
            trial = SimulatedTrial(trial_id, config, key=str(config.get("config_hash", "")))
            train = config["experiment"].get("train") or {}
            seed = None if primary_replicate else train.get("seed")
            reports[trial_id] = replay_reports(record, trial.key, seed, trial_epochs(config) or 0)
            controller.live[trial_id] = trial
            scheduler.on_trial_add(controller, trial)
            order += 1
            heapq.heappush(events, (now + reports[trial_id][0]["epoch_time_s"], order, trial_id))

    def end(trial: SimulatedTrial, result: dict) -> None:
        scheduler.on_trial_complete(controller, trial, result)
        searcher.on_trial_complete(trial.trial_id, result=result)
        trial.status = schema.STATUS_FINISHED if result.get("status") == schema.STATUS_FINISHED \
            else schema.STATUS_STOPPED
        trial.compute_at_end, trial.time_at_end = compute, now
        del controller.live[trial.trial_id]
        ended.append(trial)

    start_trials()
    while events:
        time_at, _, trial_id = heapq.heappop(events)
        trial = controller.live[trial_id]
        result = {**reports[trial_id][trial.epochs_run], "config_hash": trial.key, "trial_id": trial_id}
        # relative slack: a limit equal to the record's total (summed in another order) admits the last epoch
        if compute_limit is not None and compute + result["epoch_time_s"] > compute_limit * (1 + LIMIT_SLACK):
            stop_reason = "the compute limit"
            break
        now, compute = time_at, compute + result["epoch_time_s"]
        trial.epochs_run += 1
        trial.last = result
        decision = scheduler.on_trial_result(controller, trial, result)
        last_epoch = trial.epochs_run == len(reports[trial_id])
        if decision == TrialScheduler.STOP or last_epoch:
            end(trial, result)
            start_trials()
        else:
            searcher.on_trial_result(trial_id, result)
            order += 1
            heapq.heappush(events, (now + reports[trial_id][trial.epochs_run]["epoch_time_s"], order, trial_id))
    else:
        if exhausted:
            stop_reason = searcher.stats.stop_reason or "the searcher finished"
    return Simulation(ended, compute, now, stop_reason)


def make_simulation(record: Record, space: Any, objectives: Sequence[Objective], *, search: str, scheduler: str,
                    seed: int, num_samples: int, workers: int = 2, grace_period: int | None = None,
                    reduction_factor: float = 2.0, compute_limit: float | None = None,
                    primary_replicate: bool = True, rung_metric: str = "auto") -> Simulation:
    """One simulated sweep, its searcher and scheduler built exactly as ``resnetx sweep`` builds them
    (``grace_period`` None: the first epoch after the trials' warm-up, read from the space's train
    section as the sweep reads it: its first sample at ``seed``)."""
    import random

    from sweep.config.experiment import ExperimentConfig
    from sweep.search.proposers import make_proposer
    from sweep.tune.schedulers import make_scheduler
    from sweep.tune.searcher import ResNetXSearcher

    proposer = make_proposer(search, space, objectives, seed, num_samples)
    searcher = ResNetXSearcher(space, proposer, objectives, seed)
    example = ExperimentConfig(**space.sample(random.Random(seed)))  # runner.plan_sweep's example, no --set
    sched = make_scheduler(scheduler, objectives, None, grace_period, reduction_factor, rung_metric=rung_metric,
                           warmup_epochs=example.train.warmup_epochs)
    return simulate_sweep(record, searcher, sched, num_samples=num_samples, workers=workers,
                          compute_limit=compute_limit, primary_replicate=primary_replicate)
