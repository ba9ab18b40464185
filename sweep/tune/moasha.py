"""MO-ASHA as a Ray Tune scheduler: Tune's hooks over the rung rule of ``sweep.search.rungs``.

The rule itself (the paper's top ``floor(n/eta)`` of a rung by non-dominated sorting with an
epsilon-net tie-break) and its state file know no Ray; this adapter reads a trial's report,
asks the rungs, and answers CONTINUE or STOP, with the per-trial time limit of the other
schedulers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from reports.pareto import Objective
from sweep.search.rungs import MOASHARungs
from sweep.search.statuses import result_has_accuracy, trial_epochs
from sweep.tune.time_limit import TrialTimeLimitMixin


class MOASHAScheduler(TrialTimeLimitMixin, FIFOScheduler):
    """MO-ASHA over the sweep's objectives, with the per-trial time limit of the other schedulers."""

    def __init__(self, objectives: Sequence[Objective], grace_period: int = 1, reduction_factor: float = 2,
                 state_path: str | None = None) -> None:
        super().__init__()
        self.rung_rule = MOASHARungs(objectives, grace_period, reduction_factor, state_path)
        self.objectives = self.rung_rule.objectives

    @property
    def decisions(self) -> list[dict[str, Any]]:
        """Every rung decision so far (tests and the benchmark read them)."""
        return self.rung_rule.decisions

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if not result_has_accuracy(result):
            return TrialScheduler.CONTINUE  # a failure report ends the trial by itself
        values = [result.get(o.name) for o in self.objectives]
        epoch = result.get("epoch")
        if epoch is None or any(not isinstance(v, (int, float)) for v in values):
            return TrialScheduler.CONTINUE
        keep = self.rung_rule.decide(trial.trial_id, epoch, values, trial_epochs(trial.config))
        return TrialScheduler.STOP if keep is False else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return self.rung_rule.summary()
