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

A decision costs O(n) for a rung of ``n`` results, not a sort of the whole rung: each rung keeps
the Pareto rank of every result (:class:`RungIndex`), updated by each arrival. The rank of a new
point is one more than the highest rank among the points that dominate it; only the points it
dominates can move, each one rank down at most, front by front; and the decision needs only the
fronts up to the new point's (:func:`promotes` over the whole rung is the reference the tests
compare it with, and :func:`reports.pareto.top_k` the same rule).

Every decision is appended, one JSON line, to a state file, so a resumed sweep continues with
the rungs it had: flushed at once (a killed driver loses nothing the kernel has), synced to the
disk at most once every ``SYNC_EVERY_S`` (an ``fsync`` per decision costs more than the decision
on a network file system). Ray Tune drives this through ``sweep.tune.moasha.MOASHAScheduler``;
the recorded-benchmark simulator drives the same scheduler.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reports.pareto import LOG_SCALE_OBJECTIVES, TIE_TOLERANCE, UNRANKED, Objective, normalised, top_k

SYNC_EVERY_S = 1.0  # the state file is fsync'ed at most this often (every decision is flushed)


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


class RungIndex:
    """One rung's results in arrival order with the Pareto rank of each, so that a decision is O(n).

    ``ranks[i]`` is row ``i``'s rank in :func:`reports.pareto.non_dominated_sort` of every row so
    far (``UNRANKED``: a non-finite value), and ``fronts[r]`` the rows of rank ``r``. Rows keep the
    order :func:`promotes` hands them to ``top_k`` (recorded ones first, in arrival order, then the
    new one), so the epsilon-net's ties go to the same row and :meth:`decide` returns exactly what
    ``promotes`` would. The minimisation points are kept one column per objective (a comparison of
    a point with every row is then ``2k`` contiguous vector operations).
    """

    def __init__(self, maximize: Sequence[bool], log_scale: Sequence[bool], reduction_factor: float) -> None:
        self.maximize, self.log_scale = list(maximize), list(log_scale)
        self.reduction_factor = reduction_factor
        self.signs = np.where(np.asarray(self.maximize, dtype=bool), -1.0, 1.0)
        self.values = np.empty((16, len(self.maximize)))  # rows as given (what top_k normalises)
        self.columns = np.empty((len(self.maximize), 16))  # minimisation points, one row per objective
        self.ranks = np.empty(16, dtype=np.int64)
        self.fronts: list[set[int]] = []
        self.n = 0

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[float]], maximize: Sequence[bool], log_scale: Sequence[bool],
                  reduction_factor: float) -> RungIndex:
        """An index of ``rows`` (a restored rung), ranked in one pass: taken in lexicographic order of
        their minimisation points, every row that dominates a row comes before it. O(n^2 k / 2)."""
        index = cls(maximize, log_scale, reduction_factor)
        for row in rows:
            index._append(np.asarray(row, dtype=float), UNRANKED)
        n, ranks = index.n, index.ranks
        columns = index.columns[:, :n]
        finite = np.flatnonzero(np.isfinite(columns).all(axis=0))
        done = np.zeros(n, dtype=bool)
        for i in finite[np.lexsort(columns[::-1, finite])]:
            dominators, _ = index._compare(columns[:, i])
            dominators &= done
            index._rank(int(i), int(ranks[:n][dominators].max()) + 1 if dominators.any() else 0)
            done[i] = True
        return index

    def __len__(self) -> int:
        return self.n

    def decide(self, row: Sequence[float]) -> bool:
        """Does ``row`` continue past the rung, ranked with every row recorded so far? Records it.

        Its rank ``r`` is one more than the highest rank among the rows that dominate it (no other
        row's rank up to ``r`` changes but those it dominates, which move down); with ``better`` rows
        ranked above ``r``, it continues when the slots leave room for its whole front, or for it
        among the first places of its front's epsilon-net order, as in ``top_k``."""
        value = np.asarray(row, dtype=float)
        n, slots = self.n, promotion_slots(self.n + 1, self.reduction_factor)
        if not np.isfinite(value).all():
            self._append(value, UNRANKED)
            return False
        point = value * self.signs
        ranks = self.ranks[:n]
        dominators, dominated = self._compare(point)
        rank = int(ranks[dominators].max()) + 1 if dominators.any() else 0
        better = sum(len(front) for front in self.fronts[:rank])
        same = np.fromiter(self.fronts[rank], dtype=np.int64) if rank < len(self.fronts) else np.zeros(0, np.int64)
        moved = np.sort(same[dominated[same]])  # the new row pushes these one front down
        if better >= slots:
            keep = False
        else:
            front = np.sort(same[~dominated[same]])
            if better + front.size + 1 <= slots:
                keep = True
            else:
                members = np.vstack([self.values[front], value[None, :]])
                keep = _last_in_net(normalised(members, self.maximize, self.log_scale), slots - better)
        self._append(value, UNRANKED)
        self._rank(n, rank)
        self._push_down(moved, rank)
        return keep

    def _compare(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows that dominate ``point``, rows it dominates), over ranked rows (minimisation)."""
        columns = self.columns[:, : self.n]
        at_most = np.logical_and.reduce([c <= p for c, p in zip(columns, point)])
        at_least = np.logical_and.reduce([c >= p for c, p in zip(columns, point)])
        equal = np.logical_and.reduce([c == p for c, p in zip(columns, point)])
        ranked = self.ranks[: self.n] != UNRANKED
        return at_most & ~equal & ranked, at_least & ~equal & ranked

    def _append(self, value: np.ndarray, rank: int) -> None:
        if self.n == len(self.ranks):
            grow = max(16, self.n)
            self.values = np.concatenate([self.values, np.empty((grow, self.values.shape[1]))])
            self.columns = np.concatenate([self.columns, np.empty((self.columns.shape[0], grow))], axis=1)
            self.ranks = np.concatenate([self.ranks, np.empty(grow, dtype=np.int64)])
        self.values[self.n] = value
        self.columns[:, self.n] = value * self.signs
        self.ranks[self.n] = rank
        self.n += 1

    def _rank(self, row: int, rank: int) -> None:
        """Put ``row`` (unranked until now) on front ``rank``."""
        while len(self.fronts) <= rank:
            self.fronts.append(set())
        self.fronts[rank].add(row)
        self.ranks[row] = rank

    def _push_down(self, moved: np.ndarray, rank: int) -> None:
        """Rows of front ``rank`` that a new row dominates move one front down, and so, front by
        front, do the rows of the next front that a moved row dominates (a new row lengthens a
        chain of domination by one at most, so no row moves further)."""
        while moved.size:
            following = np.zeros(0, dtype=np.int64)
            if rank + 1 < len(self.fronts):
                following = np.fromiter(self.fronts[rank + 1], dtype=np.int64)
                following = following[_dominated_by_any(self.columns[:, moved], self.columns[:, following])]
            else:
                self.fronts.append(set())
            self.fronts[rank].difference_update(moved.tolist())
            self.fronts[rank + 1].update(moved.tolist())
            self.ranks[moved] = rank + 1
            moved, rank = following, rank + 1


def _dominated_by_any(dominators: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which columns of ``points`` some column of ``dominators`` dominates (minimisation; one row per
    objective), in blocks of about a million comparisons."""
    out = np.zeros(points.shape[1], dtype=bool)
    step = max(1, (1 << 20) // max(1, points.shape[1]))
    for start in range(0, dominators.shape[1], step):
        block = dominators[:, start:start + step, None]  # (k, a, 1) against (k, 1, b)
        at_most = (block <= points[:, None, :]).all(axis=0)
        strictly = (block < points[:, None, :]).any(axis=0)
        out |= (at_most & strictly).any(axis=0)
    return out


def _last_in_net(points: np.ndarray, places: int) -> bool:
    """Is the last row among the first ``places`` of :func:`reports.pareto.epsilon_net_order`?

    The same steps as that function (same floats, same ties), stopped at ``places`` picks or at
    the last row, whichever comes first."""
    last = points.shape[0] - 1
    pick = int(np.lexsort(points.T[::-1])[0])
    nearest = np.linalg.norm(points - points[pick], axis=1)
    for _ in range(places - 1):
        if pick == last:
            return True
        nearest[pick] = -np.inf  # chosen rows stay at -inf through np.minimum
        pick = int(np.flatnonzero(nearest >= nearest.max() - TIE_TOLERANCE)[0])
        nearest = np.minimum(nearest, np.linalg.norm(points - points[pick], axis=1))
    return pick == last


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
        self._indexes: dict[int, RungIndex] = {}  # milestone -> its ranked results (built on first use)
        self._stopped: set[str] = set()  # trials with a decision that stopped them
        self._synced = -float("inf")  # time.monotonic() of the state file's last fsync

    def decide(self, trial_id: str, epoch: int, values: Sequence[float], max_epochs: int | None) -> bool | None:
        """True: continue past the rung just reached; False: stop; None: no rung is decided at ``epoch``.

        A trial stopped before (a decision recorded, then a driver kill that the backend's own
        state missed) is stopped again.
        """
        self.load()
        if trial_id in self._stopped:
            return False
        for milestone in reversed(rung_milestones(self.grace_period, self.reduction_factor, max_epochs)):
            recorded = self.rungs.setdefault(milestone, {})
            if epoch < milestone or trial_id in recorded:
                continue
            point = [float(v) for v in values]
            keep = self._index(milestone).decide(point)  # == promotes(list(recorded.values()), point, ...)
            recorded[trial_id] = point
            decision = {"trial_id": trial_id, "rung": milestone, "values": list(values), "promoted": keep}
            self.decisions.append(decision)
            if not keep:
                self._stopped.add(trial_id)
            self._append(decision)
            return keep
        return None

    def _index(self, milestone: int) -> RungIndex:
        """The ranked results of a rung, built from its records the first time it decides (after a restore)."""
        if milestone not in self._indexes:
            self._indexes[milestone] = RungIndex.from_rows(
                self.rungs.get(milestone, {}).values(), [o.maximize for o in self.objectives],
                [o.name in LOG_SCALE_OBJECTIVES for o in self.objectives], self.reduction_factor)
        return self._indexes[milestone]

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
            if not d["promoted"]:
                self._stopped.add(d["trial_id"])

    def _append(self, decision: dict[str, Any]) -> None:
        """Append one decision (a line of JSON, flushed): constant cost per decision, unlike
        rewriting every rung each time, and a kill mid-write loses at most that line. A killed
        driver loses nothing flushed; ``fsync`` (what a crash of the machine needs) runs at most
        once every ``SYNC_EVERY_S``, so a crash of the machine loses at most the decisions since
        the last one (their trials are decided again when they report after the restore)."""
        if not self.state_path:
            return
        Path(self.state_path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_path, "a") as handle:
            handle.write(json.dumps(decision) + "\n")
            handle.flush()
            now = time.monotonic()
            if now - self._synced >= SYNC_EVERY_S:
                os.fsync(handle.fileno())
                self._synced = now
