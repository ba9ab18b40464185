"""Multi-objective asynchronous successive halving (MO-ASHA): early stopping that knows cost.

ASHA stops a trial at a rung (after ``grace_period * reduction_factor**k`` epochs) unless its
accuracy is in the top ``1/reduction_factor`` of the results recorded at that rung so far. With
several objectives that throws away exactly the networks a Pareto search wants: a small
network slightly less accurate than a big one at the rung. MO-ASHA (Schmucker, Donini, Zafar,
Salinas, Archambeau, "Multi-objective Asynchronous Successive Halving", 2021; Syne Tune's
``MOASHA``) ranks a rung's results by non-dominated sorting over *all* the sweep's objectives
(accuracy at the rung, and the cost objectives, which every report carries from the start) and
promotes by that rank.

Our rule, decided when a trial reports at a rung, against everything recorded there so far:
the trial continues when it is on the rung's current front (rank 0), or when fewer than
``n / reduction_factor`` of the ``n`` results (itself included) have a strictly better rank;
the first result at a rung always continues. A trial's own ``train.epochs`` is its maximum, so
rungs lie below it. The rung records are written to a JSON file beside the sweep's Tune state
after every decision, so a resumed sweep (``Tuner.restore`` rebuilds the scheduler as it was
when the sweep started) continues with the records it had.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from reports.pareto import Objective, non_dominated_sort
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


def promotes(recorded: Sequence[Sequence[float]], new: Sequence[float], maximize: Sequence[bool],
             reduction_factor: float) -> bool:
    """Does a result ``new`` continue past a rung that has already recorded ``recorded``? (pure)"""
    if not recorded:
        return True
    ranks = non_dominated_sort(np.asarray([*recorded, new], dtype=float), maximize)
    mine = ranks[-1]
    if mine == 0:
        return True
    better = int(np.sum((ranks >= 0) & (ranks < mine)))
    return better < len(ranks) / reduction_factor


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
                            [o.maximize for o in self.objectives], self.reduction_factor)
            recorded[trial.trial_id] = [float(v) for v in values]
            self.decisions.append({"trial_id": trial.trial_id, "rung": milestone, "values": values,
                                   "promoted": keep})
            self._save()
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
        if self.state_path and os.path.isfile(self.state_path):
            with open(self.state_path) as handle:
                state = json.load(handle)
            self.rungs = {int(k): v for k, v in state.get("rungs", {}).items()}
            self.decisions = list(state.get("decisions", []))

    def _save(self) -> None:
        if not self.state_path:
            return
        folder = Path(self.state_path).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".moasha-", dir=folder)
        with os.fdopen(fd, "w") as handle:
            json.dump({"rungs": self.rungs, "decisions": self.decisions}, handle)
        os.replace(tmp, self.state_path)
