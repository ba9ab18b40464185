"""The sweep's Ray Tune searcher: one place for proposal, budgets, de-duplication and seeds.

Ray's own ``OptunaSearch`` cannot skip a point that breaks a parameter budget, cannot reuse the
result of a network it has already trained, and forgets its study on restore unless given
storage. This searcher wraps a *proposer* (Optuna ask/tell, seeded random sampling, or a grid)
and, for every Tune trial it is asked for:

- drops points that break the space's budget (told to Optuna as failed, never trained);
- recognises points whose trial key (model canonical hash + training settings) was already
  proposed: the earlier result is reused (told to Optuna again) instead of training twice;
- sets ``train.seed`` from the sweep seed and the trial key, so the same sweep with the same
  seed proposes and trains the same configs.

Its whole state pickles, so ``Tuner.restore`` resumes the proposal sequence where it stopped.
"""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ray.tune.search import Searcher

from reports.pareto import Objective
from sweep.training.seeding import derive_seed

# What a trial reports when it ends without a result that may be ranked.
UNRANKABLE = ("diverged", "failed", "infeasible")


class Proposer(Protocol):
    """Source of candidate configs: ``propose`` returns (nested config, token) or None when exhausted."""

    def propose(self) -> tuple[dict, Any] | None: ...

    def tell(self, token: Any, values: Sequence[float] | None) -> None: ...


class RandomProposer:
    """Seeded random sampling: candidate ``i`` depends only on (seed, i), so restores replay exactly."""

    def __init__(self, space: Any, seed: int) -> None:
        self.space, self.seed, self.index = space, seed, 0

    def propose(self) -> tuple[dict, Any] | None:
        self.index += 1
        return self.space.sample(random.Random(derive_seed(self.seed, "random", self.index))), self.index

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """Random search learns nothing from results."""


class GridProposer:
    """Every point of a grid space, in the space's stable order; exhausted at the end."""

    def __init__(self, space: Any) -> None:
        self.points, self.index = space.grid(), 0

    def propose(self) -> tuple[dict, Any] | None:
        if self.index >= len(self.points):
            return None
        self.index += 1
        return copy.deepcopy(self.points[self.index - 1]), self.index

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """A grid is fixed in advance."""


class OptunaProposer:
    """Optuna ask/tell with a seeded TPE sampler (multi-objective when several objectives)."""

    def __init__(self, space: Any, objectives: Sequence[Objective], seed: int, num_samples: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=max(3, min(10, num_samples // 3)), multivariate=True,
            group=True, constant_liar=True,
        )
        directions = ["maximize" if o.maximize else "minimize" for o in objectives]
        self.space = space
        self.study = optuna.create_study(directions=directions, sampler=sampler)

    def propose(self) -> tuple[dict, Any] | None:
        trial = self.study.ask()
        return self.space.suggest(trial), trial.number

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        import optuna

        if values is None or any(v != v for v in values):  # failed, or NaN
            self.study.tell(token, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(token, list(values))


def make_proposer(search: str, space: Any, objectives: Sequence[Objective], seed: int, num_samples: int) -> Proposer:
    """Explicit registry of proposal strategies by ``--search`` name."""
    if search == "optuna":
        return OptunaProposer(space, objectives, seed, num_samples)
    if search == "random":
        return RandomProposer(space, seed)
    if search == "grid":
        return GridProposer(space)
    raise ValueError(f"search: got {search!r}; must be one of optuna, random, grid")


@dataclass
class SearchStats:
    proposed: int = 0
    infeasible: int = 0
    duplicates: int = 0


class ResNetXSearcher(Searcher):
    """Budget-aware, de-duplicating, resumable searcher over a ResNetX search space."""

    def __init__(self, space: Any, proposer: Proposer, objectives: Sequence[Objective], seed: int,
                 overrides: dict | None = None, max_attempts: int = 200,
                 prepare: Callable[[dict], dict] | None = None) -> None:
        super().__init__(metric=None, mode=None)
        self.space, self.proposer, self.objectives = space, proposer, list(objectives)
        self.seed, self.overrides, self.max_attempts = seed, overrides or {}, max_attempts
        # Completes a proposal before it is keyed (picklable: it travels with the Tuner's state),
        # e.g. train.weights: pretrained -> the file of the sweep's pretrain stage.
        self.prepare = prepare
        # Latency is a timing worth its cost only when it is an objective (sweep.training.costs).
        self.measure_latency = any(o.name == "latency_ms" for o in self.objectives)
        self.stats = SearchStats()
        self.results: dict[str, list[float] | None] = {}  # trial key -> objective values (None = failed)
        self.live: dict[str, tuple[str, Any]] = {}  # tune trial id -> (trial key, token)
        self.waiting: dict[str, list[Any]] = {}  # trial key -> tokens of duplicates of a running trial
        self.exhausted = False

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # objectives are our own; Tune's single metric/mode does not apply

    def suggest(self, trial_id: str) -> dict | None:
        for _ in range(self.max_attempts):
            proposal = None if self.exhausted else self.proposer.propose()
            if proposal is None:
                self.exhausted = True
                return Searcher.FINISHED if not self.live else None
            config, token = proposal
            config = _apply_overrides(config, self.overrides)
            if self.prepare is not None:
                config = self.prepare(config)
            self.stats.proposed += 1
            key = self._key_if_valid(config)
            if key is None:
                self.stats.infeasible += 1
                self.proposer.tell(token, None)
                continue
            if key in self.results:
                self.stats.duplicates += 1
                self.proposer.tell(token, self.results[key])
                continue
            if key in self.waiting:
                self.stats.duplicates += 1
                self.waiting[key].append(token)
                continue
            self.waiting[key] = []
            self.live[trial_id] = (key, token)
            config.setdefault("train", {})["seed"] = derive_seed(self.seed, key)
            return {"experiment": config, "config_hash": key, "measure_latency": self.measure_latency}
        self.exhausted = True  # every recent proposal was a duplicate or over budget: space used up
        return Searcher.FINISHED if not self.live else None

    def trial_key(self, config: dict) -> str:
        """``sweep.config.experiment.trial_key``: the run's ``config_hash`` tag (plus the seed for replicates)."""
        from sweep.config.experiment import trial_key

        return trial_key(config, self.space.seed_is_axis)

    def _key_if_valid(self, config: dict) -> str | None:
        """The trial key, or None when the point breaks the budget or does not validate (e.g. a
        ``--set`` override that only some proposals contradict): such a point is never trained."""
        from resnetx.errors import ConfigError

        try:
            if self.space.budget_violation(config) is not None:
                return None
            return self.trial_key(config)
        except ConfigError:
            return None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            self._late_result(result, error)
            return
        key, token = self.live.pop(trial_id)
        values = None if error or not result else objective_values(result, self.objectives)
        self.results[key] = values
        for waiting_token in [token, *self.waiting.pop(key, [])]:
            self.proposer.tell(waiting_token, values)

    def _late_result(self, result: dict | None, error: bool) -> None:
        """A trial that errored and was re-run by ``--resume`` completes a second time: its result
        now stands for its config hash, so later duplicates reuse it (Optuna keeps the earlier
        FAIL: a finished study trial cannot be told again)."""
        key = (result or {}).get("config_hash")
        if error or not key or self.results.get(key) is not None:
            return
        self.results[key] = objective_values(result, self.objectives)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        # Trials that were running at the save are resumed by Tune under the same ids.


def objective_values(result: dict, objectives: Sequence[Objective]) -> list[float] | None:
    """Objective values of a trial's last result, or None if it must not be ranked."""
    if result.get("status") in UNRANKABLE:
        return None
    values = []
    for objective in objectives:
        value = result.get(objective.name)
        if value is None or isinstance(value, bool):
            return None
        values.append(float(value))
    return values


def _apply_overrides(config: dict, overrides: dict) -> dict:
    from sweep.config.overrides import merge

    return merge(config, overrides) if overrides else config
