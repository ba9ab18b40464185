"""The sweep's search logic: one place for proposal, budgets, de-duplication, seeds and concurrency.

It knows no Ray: Ray Tune drives it through a thin ``Searcher`` adapter (sweep/tune/searcher.py),
and the recorded-benchmark simulator drives the same adapter without a cluster. Ray's own
``OptunaSearch`` cannot skip a point that breaks a parameter budget, cannot reuse the result
of a network it has already trained, and forgets its study on restore unless given
storage. This searcher wraps a *proposer* (Optuna ask/tell, seeded random sampling, or a grid)
and, for every Tune trial it is asked for:

- drops points that break the space's budget, never trained; Optuna is told them as complete
  trials that violate a constraint (TPE's ``constraints_func``), so it learns the infeasible
  region instead of proposing it again (a trial told FAIL teaches TPE nothing);
- recognises points whose trial key (model canonical hash + training settings) was already
  proposed: the earlier result is reused (told to Optuna again) instead of training twice;
- sets ``train.seed`` from the sweep seed and the trial key, so the same sweep with the same
  seed proposes and trains the same configs;
- when the proposer repeats itself (3 duplicates in a row: TPE does on small discrete spaces),
  proposes an untrained point drawn at random instead, through the proposer so Optuna learns
  from it (``enqueue_trial``); on a small finite space the pick is exact, so "used up" means
  every network is trained.

It owns the concurrency limit (``set_max_concurrency`` returns True), so Tune does not wrap it
in its ``ConcurrencyLimiter``, which drops ``on_trial_complete`` for trials it no longer counts
as live: a trial that errored and was re-run by ``--resume`` would never report back. It counts
what it did with every proposal (:class:`SearchStats`) and why it stopped, in a JSON file beside
the sweep's Tune state that the runner records on the parent run.

Its whole state pickles, so ``Tuner.restore`` resumes the proposal sequence where it stopped.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from reports.pareto import Objective
from resnetx.errors import ConfigError
from sweep.config.experiment import trial_key
from sweep.config.overrides import merge
from sweep.search.proposers import (
    EXPLORE_AFTER,
    EXPLORE_AFTER_WINDOWED,
    EXPLORE_DRAWS,
    EXPLORE_FINITE_POINTS,
    Explorer,
    Proposer,
)
from sweep.search.statuses import ran_to_the_end, result_has_accuracy, trial_epochs
from sweep.training.seeding import derive_seed

FINISHED = "FINISHED"  # suggest's "no more trials" (the value of ray.tune.search.Searcher.FINISHED)
NO_TOKEN = "no-proposer-token"  # a trial adopted from Tune's saved list (reconcile): the proposer never asked it


@dataclass(frozen=True)
class RestoredTrial:
    """One trial of Tune's restored trial list, as :meth:`SearchCore.reconcile` reads it."""

    config: dict
    ended: bool  # TERMINATED or ERROR: Tune will not run it again, nor report it to the searcher
    errored: bool = False
    last_result: dict | None = None


@dataclass
class SearchStats:
    """What happened to every proposal: why fewer than ``num_samples`` trials may have run."""

    proposed: int = 0
    infeasible: int = 0
    duplicates: int = 0
    trained: int = 0
    late_results: int = 0  # results of trials no longer live (re-run after a restore) that reached the cache
    results_known: int = 0  # networks trained to their last epoch whose objective values the searcher holds
    stopped_early: int = 0  # networks the scheduler stopped at a rung (never final results)
    stop_reason: str = ""  # why the searcher stopped proposing, if it did

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)



class SearchCore:
    """Budget-aware, de-duplicating, resumable searcher over a ResNetX search space (no Ray).

    ``suggest`` returns a trial config, None (ask again later: the concurrency limit is reached)
    or :data:`FINISHED` (no more trials), the contract of Ray Tune's ``Searcher.suggest``.
    """

    def __init__(self, space: Any, proposer: Proposer, objectives: Sequence[Objective], seed: int,
                 overrides: dict | None = None, max_attempts: int = 200,
                 prepare: Callable[[dict], dict] | None = None, stats_path: str | None = None) -> None:
        self.space, self.proposer, self.objectives = space, proposer, list(objectives)
        self.seed, self.overrides, self.max_attempts = seed, overrides or {}, max_attempts
        # Completes a proposal before it is keyed (picklable: it travels with the Tuner's state),
        # e.g. train.weights: pretrained -> the file of the sweep's pretrain stage.
        self.prepare = prepare
        # Latency is a timing worth its cost only when it is an objective (sweep.training.costs).
        self.measure_latency = any(o.name == "latency_ms" for o in self.objectives)
        self.stats = SearchStats()
        self.results: dict[str, list[float] | None] = {}  # trial key -> final objective values (None = failed)
        # trial key -> values when the scheduler stopped it: a lower fidelity, never a final result
        self.stopped: dict[str, list[float] | None] = {}
        self.live: dict[str, tuple[str, Any]] = {}  # tune trial id -> (trial key, token)
        self.waiting: dict[str, list[Any]] = {}  # trial key -> tokens of duplicates of a running trial
        self.exhausted = False
        self.max_concurrent: int | None = None
        # Trials running for the concurrency limit: suggested in this driver session, or restored
        # from the save (Tune resumes them under the same ids) until they report or complete.
        self.started: set[str] = set()
        self.finite_points: list[tuple[str, dict]] | None = None  # see _finite_points (empty: not finite)
        self.untrained_points: list[int] | None = None  # indices of finite_points not started at the last look
        self.explorations = 0  # untrained points picked by _explore
        self.misses: dict[str, int] = {}  # why _explore's draws were refused, for its stop reason
        self.epochs: dict[str, int | None] = {}  # live tune trial id -> its train.epochs (a shorter run: stopped)
        self.hash_to_key: dict[str, str] = {}  # a trial's config_hash tag -> its key (they differ only when
        self.stats_path = stats_path  # ``prepare`` resolved something into the config)
        self.suggested: dict[str, dict] = {}  # live tune trial id -> the config suggest gave it (reconcile)
        self.requeued: list[tuple[str, Any, dict]] = []  # (key, token, config) to hand out again (reconcile)
        if hasattr(proposer, "explore"):  # keyed here, when the sweep is planned, never inside Tune's suggest
            self._finite_points()

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Own the limit (True), so Tune adds no ConcurrencyLimiter that would drop late results."""
        self.max_concurrent = max_concurrent
        return True

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # objectives are our own; Tune's single metric/mode does not apply

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.max_concurrent is not None and len(self.started) >= self.max_concurrent:
            return None  # Tune asks again when a trial ends
        if self.requeued:  # networks reconcile found handed to trials Tune has no record of
            return self._hand_out_again(trial_id)
        attempts, in_a_row = 0, 0
        while attempts < self.max_attempts or getattr(self.proposer, "finite", False):
            attempts += 1  # a grid is walked to its end: its points can all be tried, none repeats
            try:
                proposal, in_a_row = self._next_proposal(in_a_row)
            except ConfigError as exc:  # e.g. no draw within the budget in MAX_TRIES: stop, do not raise in Tune
                self._stop(f"{exc}; the sweep stops proposing")
                return FINISHED
            if proposal is None and in_a_row < 0:
                return FINISHED  # _explore found nothing and said why
            if proposal is None:
                self._stop("the space has no more points (grid done)" if not self.exhausted else "")
                return FINISHED  # running trials still complete (Tune reports them after FINISHED)
            config, token = proposal
            config = _apply_overrides(config, self.overrides)
            self.stats.proposed += 1
            # Keyed (and seeded) before ``prepare``: a pretrained network's file lies in the sweep's
            # folder, and the key and seed of a trial must not depend on the folder's name.
            key, excess = self._key_if_valid(config)
            if key is None:  # Optuna's start-up draws uniformly: a tight budget rejects most of them
                self.stats.infeasible += 1
                self.proposer.tell_infeasible(token, excess)
                in_a_row += 1
                continue
            if key in self.results:
                self.stats.duplicates += 1
                self.proposer.tell(token, self.results[key])
                in_a_row += 1
                continue
            if key in self.stopped:  # stopped early before: the scheduler's verdict stands
                self.stats.duplicates += 1
                self.proposer.tell_stopped(token)
                in_a_row += 1
                continue
            if key in self.waiting:
                self.stats.duplicates += 1
                self.waiting[key].append(token)
                in_a_row += 1
                continue
            self.waiting[key] = []
            self.live[trial_id] = (key, token)
            self.epochs[trial_id] = trial_epochs({"experiment": config})
            self.started.add(trial_id)
            self.stats.trained += 1
            self._write_stats()
            seed = derive_seed(self.seed, key)
            config_hash = key
            if self.prepare is not None:  # before the seed is set: a replicate's pretrain is its own seed's
                config = self.prepare(config)
            config.setdefault("train", {})["seed"] = seed
            if self.prepare is not None:
                config_hash = self.trial_key(config)  # what trains (the checkpoint records the same hash)
            self.hash_to_key[config_hash] = key
            suggested = {"experiment": config, "config_hash": config_hash, "measure_latency": self.measure_latency}
            self.suggested[trial_id] = copy.deepcopy(suggested)
            return suggested
        # every recent proposal was a duplicate or over budget: the space is used up
        self._stop(f"{self.max_attempts} proposals in a row were duplicates of trained networks or outside the "
                   "budget: the space is used up")
        return FINISHED

    def _next_proposal(self, in_a_row: int) -> tuple[tuple[dict, Any] | None, int]:
        """The proposer's next point, or after EXPLORE_AFTER misses in a row (duplicates or over the
        budget; EXPLORE_AFTER_WINDOWED once a TPE study outgrew its history bound) an untrained point
        within budget drawn at random; in_a_row -1: nothing to explore."""
        explore_after = EXPLORE_AFTER_WINDOWED if getattr(self.proposer, "windows", 0) else EXPLORE_AFTER
        if not self.exhausted and in_a_row >= explore_after and hasattr(self.proposer, "explore"):
            proposal = self._explore()
            return proposal, (0 if proposal is not None else -1)
        return (None if self.exhausted else self.proposer.propose()), in_a_row

    def _explore(self) -> tuple[dict, Any] | None:
        """An untrained point for a proposer that keeps repeating itself; None (and the stop reason) if none."""
        proposer = cast(Explorer, self.proposer)  # suggest asks only a proposer that has ``explore``
        points = self._finite_points()
        if points is None:
            self.misses = {"over the budget or invalid": 0, "already trained or running": 0}
            proposal = proposer.explore(self._untrained)
            if proposal is None:
                self._stop(f"{EXPLORE_DRAWS} random draws found no network to train ("
                           + ", ".join(f"{n} {why}" for why, n in self.misses.items() if n)
                           + "): " + ("the space is used up" if not self.misses["over the budget or invalid"]
                                      else "widen the ranges or raise the budget"))
            return proposal
        # A started network stays started (running, then trained or stopped), so filtering the last
        # look's untrained points gives the same list, in the same order, as filtering all of them.
        earlier = getattr(self, "untrained_points", None)  # a searcher saved before it was kept
        candidates = range(len(points)) if earlier is None else earlier
        self.untrained_points = [i for i in candidates if not self._started(points[i][0])]
        if not self.untrained_points:
            self._stop(self._every_network_started(len(points)))
            return None
        self.explorations += 1
        pick = random.Random(derive_seed(self.seed, "explore", self.explorations)).randrange(len(self.untrained_points))
        return proposer.propose_point(points[self.untrained_points[pick]][1])

    def _finite_points(self) -> list[tuple[str, dict]] | None:
        """(key, point) for the first valid point of each network of a small finite space; else None.

        Computed once, when the searcher is built (sweep planning: up to EXPLORE_FINITE_POINTS
        points keyed, seconds for the largest), and kept: ``suggest`` only reads it. A space with
        more points is found out by counting its walk, without building every point."""
        if self.finite_points is None:
            try:
                everything = self.space.every_point(limit=EXPLORE_FINITE_POINTS) if _few_points(self.space) else []
            except ConfigError:  # continuous or large: explore by random draws (cached as [])
                everything = []
            seen: dict[str, dict] = {}
            for point in everything:
                key, _ = self._key_if_valid(_apply_overrides(copy.deepcopy(point), self.overrides))
                if key is not None:
                    seen.setdefault(key, point)
            self.finite_points = list(seen.items())
        return self.finite_points or None

    def _untrained(self, config: dict) -> bool:
        """A point worth training: within budget, valid, and never started (trained, stopped or running)."""
        key, _ = self._key_if_valid(_apply_overrides(config, self.overrides))
        miss = ("over the budget or invalid" if key is None
                else "already trained or running" if self._started(key) else "")
        if miss:
            self.misses[miss] = self.misses.get(miss, 0) + 1
        return not miss

    def _started(self, key: str) -> bool:
        return key in self.results or key in self.stopped or key in self.waiting

    def _every_network_started(self, networks: int) -> str:
        """The stop reason of a finite space whose every network was started: say how each ended."""
        finished = sum(v is not None for v in self.results.values())
        failed = sum(v is None for v in self.results.values())
        return (f"every one of the {networks} networks of the space was started ({finished} trained to the end, "
                f"{len(self.stopped)} stopped early, {failed} failed, {len(self.waiting)} running): the space is "
                "used up")

    def _stop(self, reason: str) -> None:
        self.exhausted = True
        if reason and not self.stats.stop_reason:
            self.stats.stop_reason = reason
        self._write_stats()

    def _write_stats(self) -> None:
        """The counts, for the runner to record on the parent run (atomic: it may read at any time)."""
        self.stats.results_known = sum(v is not None for v in self.results.values())
        self.stats.stopped_early = len(self.stopped)
        if not self.stats_path:
            return
        tmp = f"{self.stats_path}.tmp"
        with open(tmp, "w") as handle:
            json.dump(self.stats.to_dict(), handle)
        os.replace(tmp, self.stats_path)

    def trial_key(self, config: dict) -> str:
        """``sweep.config.experiment.trial_key``: the run's ``config_hash`` tag (plus the seed for replicates)."""
        return trial_key(config, self.space.seed_is_axis)

    def _key_if_valid(self, config: dict) -> tuple[str | None, float]:
        """(trial key, budget excess); the key is None when the point breaks the budget or does not
        validate (e.g. a ``--set`` override that only some proposals contradict): never trained."""
        try:
            excess = self.space.budget_excess(config)
            if excess > 0:
                return None, excess
            return self.trial_key(config), excess
        except ConfigError:
            return None, 1.0

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Results are read when a trial completes; the scheduler decides on the rungs."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.started.discard(trial_id)
        if trial_id not in self.live:
            self._late_result(result, error)
            return
        key, token = self.live.pop(trial_id)
        self.suggested.pop(trial_id, None)
        values = None if error or not result else objective_values(result, self.objectives)
        tokens = [t for t in (token, *self.waiting.pop(key, [])) if t != NO_TOKEN]
        if values is not None and not ran_to_the_end(result, self.epochs.pop(trial_id, None)):
            self.stopped[key] = values  # the scheduler stopped it at a rung
            for waiting_token in tokens:
                self.proposer.tell_stopped(waiting_token)
        else:
            self.results[key] = values
            for waiting_token in tokens:
                self.proposer.tell(waiting_token, values)
        self._write_stats()

    def _late_result(self, result: dict | None, error: bool) -> None:
        """A trial that errored and was re-run by ``--resume`` completes a second time: its result
        now stands for its config hash, so later duplicates reuse it (Optuna keeps the earlier
        FAIL: a finished study trial cannot be told again)."""
        key = (result or {}).get("config_hash")
        key = self.hash_to_key.get(key, key) if key else key
        if error or not key or self.results.get(key) is not None or not ran_to_the_end(result, None):
            return
        self.results[key] = objective_values(result or {}, self.objectives)
        self.stopped.pop(key, None)
        self.stats.late_results += 1
        self._write_stats()

    def reconcile(self, restored: dict[str, RestoredTrial]) -> dict[str, int]:
        """Agree with Tune's restored trial list (``restored``: every trial of it, by trial id).

        Tune saves its trial list and then this searcher's state, as two files; a driver killed
        between them leaves the new list with the old searcher (and before 0412df0 the other way
        round). Left so, a network is lost or trained twice: a trial the searcher handed out that
        the list lacks is never run, and the searcher never proposes its network again (the long
        chaos soak lost one so); a trial the list holds that the searcher has not heard of runs, and
        the searcher proposes its network a second time; a trial the list has ended that the
        searcher still counts as live holds a concurrency slot for the rest of the sweep.
        So: the first is handed out again, to the next trial Tune asks for (same config, same
        proposer token: the proposal counts stay the dry walk's); the second is adopted as live
        (its network's next proposal waits for its result, as a duplicate does); the third is
        completed with Tune's last result. Returns how many of each it mended (for the driver's log).
        """
        mended = {"handed out again": 0, "adopted": 0, "completed": 0}
        for trial_id in [t for t in self.live if t in restored and restored[t].ended]:
            mended["completed"] += 1
            trial = restored[trial_id]
            self.on_trial_complete(trial_id, result=trial.last_result, error=trial.errored)
        for trial_id in [t for t in self.live if t not in restored]:
            key, token = self.live.pop(trial_id)
            self.started.discard(trial_id)
            self.epochs.pop(trial_id, None)
            config = self.suggested.pop(trial_id, None)
            if config is not None:
                self.requeued.append((key, token, config))
                mended["handed out again"] += 1
        for trial_id, trial in restored.items():
            config_hash = trial.config.get("config_hash")
            if trial.ended or trial_id in self.live or not config_hash:
                continue
            key = self.hash_to_key.get(config_hash, config_hash)
            if self._started(key):
                continue  # the searcher knows this network under another trial: nothing to adopt
            self.live[trial_id] = (key, NO_TOKEN)
            self.waiting[key] = []
            self.hash_to_key[config_hash] = key
            self.suggested[trial_id] = copy.deepcopy(trial.config)
            self.epochs[trial_id] = trial_epochs(trial.config)
            self.started.add(trial_id)
            self.stats.proposed += 1  # the killed driver's proposal, which this searcher's state never counted
            self.stats.trained += 1
            mended["adopted"] += 1
        self._write_stats()
        return mended

    def _hand_out_again(self, trial_id: str) -> dict:
        """A network :meth:`reconcile` found handed to a trial Tune has no record of: to ``trial_id`` now."""
        key, token, config = self.requeued.pop(0)
        self.live[trial_id] = (key, token)
        self.suggested[trial_id] = copy.deepcopy(config)
        self.epochs[trial_id] = trial_epochs(config)
        self.started.add(trial_id)
        return copy.deepcopy(config)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        self.__dict__.setdefault("stopped", {})  # a sweep saved before stopped results were kept apart
        self.__dict__.setdefault("epochs", {})
        self.__dict__.setdefault("suggested", {})  # saved before reconcile: nothing to hand out again
        self.__dict__.setdefault("requeued", [])
        if self.finite_points is None and hasattr(self.proposer, "explore"):  # saved before it was kept
            self._finite_points()
        # Trials that were running at the save are resumed by Tune under the same ids: they count
        # toward the limit at once (a limit of 2 with 2 resumed trials proposes nothing new until
        # one ends), not only once they report (their first epoch can take minutes).
        self.started = set(self.live)


def objective_values(result: dict, objectives: Sequence[Objective]) -> list[float] | None:
    """Objective values of a trial's last result, or None if it must not be ranked."""
    if not result_has_accuracy(result):
        return None
    values = []
    for objective in objectives:
        value = result.get(objective.name)
        if value is None or isinstance(value, bool):
            return None
        values.append(float(value))
    return values


def _few_points(space: Any) -> bool:
    """False when a search space's walk has more than EXPLORE_FINITE_POINTS points or a continuous
    field (``every_point`` would raise after building them all); True otherwise, and for a grid or
    any other space (its own ``every_point`` decides). Counts the walk's points without nesting them."""
    if getattr(space, "is_grid", True) or not hasattr(space, "fields"):
        return True
    from search_spaces.walk import all_points

    try:
        return sum(1 for _ in itertools.islice(all_points(space.fields), EXPLORE_FINITE_POINTS + 1)) \
            <= EXPLORE_FINITE_POINTS
    except ValueError:  # a continuous field
        return False


def _apply_overrides(config: dict, overrides: dict) -> dict:
    return merge(config, overrides) if overrides else config
