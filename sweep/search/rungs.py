"""MO-ASHA's rung rule and its record: which trials continue past a rung (no Ray).

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

Every decision is appended, one JSON line, to a state file, so a resumed sweep continues with
the rungs it had. Ray Tune drives this through ``sweep.tune.moasha.MOASHAScheduler``; the
recorded-benchmark simulator drives the same scheduler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reports.pareto import LOG_SCALE_OBJECTIVES, Objective, top_k


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


class MOASHARungs:
    """The rungs of one sweep: what each recorded, every decision, and the file they are kept in."""

    def __init__(self, objectives: Sequence[Objective], grace_period: int = 1, reduction_factor: float = 2,
                 state_path: str | None = None) -> None:
        if grace_period < 1 or reduction_factor <= 1:
            raise ValueError(f"grace_period {grace_period} must be >= 1 and reduction_factor {reduction_factor} > 1")
        self.objectives = list(objectives)
        self.grace_period, self.reduction_factor = grace_period, reduction_factor
        self.state_path = state_path
        self.rungs: dict[int, dict[str, list[float]]] = {}  # milestone epoch -> trial id -> objective values
        self.decisions: list[dict[str, Any]] = []  # every rung decision, for tests and the record
        self._loaded = False

    def decide(self, trial_id: str, epoch: int, values: Sequence[float], max_epochs: int | None) -> bool | None:
        """True: continue past the rung just reached; False: stop; None: no rung is decided at ``epoch``.

        A trial stopped before (a decision recorded, then a driver kill that the backend's own
        state missed) is stopped again.
        """
        self.load()
        if any(d["trial_id"] == trial_id and not d["promoted"] for d in self.decisions):
            return False
        for milestone in reversed(rung_milestones(self.grace_period, self.reduction_factor, max_epochs)):
            recorded = self.rungs.setdefault(milestone, {})
            if epoch < milestone or trial_id in recorded:
                continue
            point = [float(v) for v in values]
            keep = promotes(list(recorded.values()), point, [o.maximize for o in self.objectives],
                            self.reduction_factor, [o.name in LOG_SCALE_OBJECTIVES for o in self.objectives])
            recorded[trial_id] = point
            decision = {"trial_id": trial_id, "rung": milestone, "values": list(values), "promoted": keep}
            self.decisions.append(decision)
            self._append(decision)
            return keep
        return None

    def summary(self) -> str:
        sizes = ", ".join(f"{m}: {len(r)}" for m, r in sorted(self.rungs.items()))
        return f"MO-ASHA over {', '.join(map(str, self.objectives))}; rungs {{{sizes}}}"

    # -- persistence ----------------------------------------------------------------------
    def load(self) -> None:
        """Read the state file once (a resumed sweep's rungs), tolerating a last line cut short."""
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

    def _append(self, decision: dict[str, Any]) -> None:
        """Append one decision (a line of JSON, flushed): constant cost per decision, unlike
        rewriting every rung each time, and a kill mid-write loses at most that line."""
        if not self.state_path:
            return
        Path(self.state_path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_path, "a") as handle:
            handle.write(json.dumps(decision) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
