"""Multi-objective asynchronous successive halving (MO-ASHA): early stopping that knows cost.

ASHA stops a trial at a rung (after ``grace_period * reduction_factor**k`` epochs) unless its
accuracy is in the top ``1/reduction_factor`` of the results recorded at that rung so far. With
several objectives that throws away exactly the networks a Pareto search wants: a small
network slightly less accurate than a big one at the rung. MO-ASHA (Schmucker, Donini, Zafar,
Salinas, Archambeau, "Multi-objective Asynchronous Successive Halving", arXiv 2106.12639, 2021)
ranks a rung's results over *all* the sweep's objectives (accuracy at the rung, and the cost
objectives, which every report carries from the start).

The paper's rule, decided when a trial reports at a rung, against everything recorded there so
far: with ``n`` results (itself included), the trial continues when it is among the rung's
``top_k(max(1, floor(n / reduction_factor)))``: whole Pareto fronts by non-dominated sorting,
and inside the front that does not fit whole, the first points of its epsilon-net order (on
objectives normalised over that front, params/FLOPs/latency on log axes;
:func:`reports.pareto.top_k`). So at most ``1/reduction_factor`` of a rung continues, however
many objectives there are, and the first result at a rung continues (as in ASHA). A result with
a missing or non-finite objective is never promoted. A trial's own ``train.epochs`` is its
maximum, so rungs lie below it.

Every decision is appended, one JSON line, to a file beside the sweep's Tune state, so a
resumed sweep (``Tuner.restore`` rebuilds the scheduler as it was when the sweep started)
continues with the rungs it had.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from reports.pareto import LOG_SCALE_OBJECTIVES, Objective, top_k
from sweep.tune.schedulers import TrialTimeLimitMixin
from sweep.tune.statuses import result_has_accuracy, trial_epochs


def rung_milestones(grace_period: int, reduction_factor: float, max_epochs: int | None) -> list[int]:
    """Epochs at which a trial of ``max_epochs`` epochs meets a rung (ascending, all below the end)."""
    milestones: list[int] = []
    epoch = float(grace_period)
    while max_epochs is None or epoch < max_epochs:
        if not milestones or int(epoch) > milestones[-1]:
            milestones.append(int(epoch))
        epoch *= reduction_factor
        if max_epochs is None and len(milestones) > 32:
            break
    return milestones


def promotion_slots(n: int, reduction_factor: float) -> int:
    """How many of a rung's ``n`` results may continue: ``max(1, floor(n / reduction_factor))``."""
    return max(1, int(n // reduction_factor))


def promotes(recorded: Sequence[Sequence[float]], new: Sequence[float], maximize: Sequence[bool],
             reduction_factor: float, log_scale: Sequence[bool] | None = None) -> bool:
    """Does a result ``new`` continue past a rung that has already recorded ``recorded``? (pure)"""
    points = np.asarray([*recorded, new], dtype=float)
    chosen = top_k(points, maximize, promotion_slots(len(points), reduction_factor), log_scale)
    return len(points) - 1 in chosen


class MOASHAScheduler(TrialTimeLimitMixin, FIFOScheduler):
    """MO-ASHA over the sweep's objectives, with the per-trial time limit of the other schedulers."""

    def __init__(self, objectives: Sequence[Objective], grace_period: int = 1, reduction_factor: float = 2,
                 state_path: str | None = None) -> None:
        super().__init__()
        if grace_period < 1 or reduction_factor <= 1:
            raise ValueError(f"grace_period {grace_period} must be >= 1 and reduction_factor {reduction_factor} > 1")
        self.objectives = list(objectives)
        self.grace_period, self.reduction_factor = grace_period, reduction_factor
        self.state_path = state_path
        self.rungs: dict[int, dict[str, list[float]]] = {}  # milestone epoch -> trial id -> objective values
        self.decisions: list[dict[str, Any]] = []  # every rung decision, for tests and the record
        self._loaded = False

    # -- Tune hooks -----------------------------------------------------------------------
    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        self._load()
        if not result_has_accuracy(result):
            return TrialScheduler.CONTINUE  # a failure report ends the trial by itself
        values = [result.get(o.name) for o in self.objectives]
        epoch = result.get("epoch")
        if epoch is None or any(not isinstance(v, (int, float)) for v in values):
            return TrialScheduler.CONTINUE
        if any(d["trial_id"] == trial.trial_id and not d["promoted"] for d in self.decisions):
            # stopped at a rung before a driver kill that Tune's own state missed: stop it again
            return TrialScheduler.STOP
        for milestone in reversed(rung_milestones(self.grace_period, self.reduction_factor,
                                                  trial_epochs(trial.config))):
            recorded = self.rungs.setdefault(milestone, {})
            if epoch < milestone or trial.trial_id in recorded:
                continue
            keep = promotes(list(recorded.values()), [float(v) for v in values],
                            [o.maximize for o in self.objectives], self.reduction_factor,
                            [o.name in LOG_SCALE_OBJECTIVES for o in self.objectives])
            recorded[trial.trial_id] = [float(v) for v in values]
            decision = {"trial_id": trial.trial_id, "rung": milestone, "values": values, "promoted": keep}
            self.decisions.append(decision)
            self._save(decision)
            return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        sizes = ", ".join(f"{m}: {len(r)}" for m, r in sorted(self.rungs.items()))
        return f"MO-ASHA over {', '.join(map(str, self.objectives))}; rungs {{{sizes}}}"

    # -- persistence ----------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not (self.state_path and os.path.isfile(self.state_path)):
            return
        with open(self.state_path) as handle:
            lines = [line for line in handle if line.strip()]
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill mid-write: the decision is redone
                continue
            if "rungs" in entry:  # the earlier format: one object with every rung and decision
                self.decisions.extend(entry.get("decisions", []))
            else:
                self.decisions.append(entry)
        for d in self.decisions:
            self.rungs.setdefault(int(d["rung"]), {})[d["trial_id"]] = [float(v) for v in d["values"]]

    def _save(self, decision: dict[str, Any]) -> None:
        """Append one decision (a line of JSON, flushed): constant cost per decision, unlike
        rewriting every rung each time, and a kill mid-write loses at most that line."""
        if not self.state_path:
            return
        Path(self.state_path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_path, "a") as handle:
            handle.write(json.dumps(decision) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
