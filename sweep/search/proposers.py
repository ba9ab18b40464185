"""Proposers: where a sweep's candidate configs come from (Optuna ask/tell, seeded random, a grid).

Pure search algorithms that know nothing of Ray: :class:`sweep.search.core.SearchCore` drives
them for the sweep (through Ray Tune's ``Searcher`` adapter, sweep/tune/searcher.py) and for the
recorded-benchmark simulator alike, so a replayed study exercises the same proposal code.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from reports.pareto import Objective
from sweep.training.seeding import derive_seed


class Proposer(Protocol):
    """Source of candidate configs: ``propose`` returns (nested config, token) or None when exhausted.

    ``tell(token, values)``: the trial's objective values at its last epoch, or None when it failed.
    ``tell_stopped(token)``: the scheduler stopped it early; its values are at a lower fidelity
    than the others' and must not be learnt as final.
    ``tell_infeasible(token, excess)``: the point was never trained; ``excess > 0`` says how far
    over the budget it was (or 1.0 for a point that does not build).
    """

    def propose(self) -> tuple[dict, Any] | None: ...

    def tell(self, token: Any, values: Sequence[float] | None) -> None: ...

    def tell_stopped(self, token: Any) -> None: ...

    def tell_infeasible(self, token: Any, excess: float) -> None: ...


class Explorer(Proposer, Protocol):
    """A proposer that can also propose an untrained point on request (random and Optuna search):
    what the searcher falls back on when the proposer keeps repeating networks it has seen."""

    def explore(self, accept: Callable[[dict], bool]) -> tuple[dict, Any] | None: ...

    def propose_point(self, config: dict) -> tuple[dict, Any]: ...


class RandomProposer:
    """Seeded random sampling: candidate ``i`` depends only on (seed, i), so restores replay exactly."""

    def __init__(self, space: Any, seed: int) -> None:
        self.space, self.seed, self.index = space, seed, 0

    def propose(self) -> tuple[dict, Any]:
        self.index += 1
        return self.space.sample(random.Random(derive_seed(self.seed, "random", self.index))), self.index

    def explore(self, accept: Callable[[dict], bool]) -> tuple[dict, Any] | None:
        """A point ``accept`` takes (one not trained yet), by seeded draws; None when none is found."""
        for _ in range(EXPLORE_DRAWS):
            self.index += 1
            config = self.space.sample(random.Random(derive_seed(self.seed, "random", self.index)))
            if accept(config):
                return config, self.index
        return None

    def propose_point(self, config: dict) -> tuple[dict, Any]:
        """Propose exactly ``config`` (the searcher picked it among the untrained points of a finite space)."""
        self.index += 1
        return copy.deepcopy(config), self.index

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """Random search learns nothing from results."""

    def tell_stopped(self, token: Any) -> None:
        """Nor from stopped trials."""

    def tell_infeasible(self, token: Any, excess: float) -> None:
        """Nor from infeasible points."""


class GridProposer:
    """Every point of a grid or other finite space (``space.every_point``), in a stable order; exhausted at the end."""

    finite = True  # the searcher walks it to the end instead of giving up after max_attempts misses

    def __init__(self, space: Any, shuffled: bool = False) -> None:
        self.points, self.index = space.every_point(), 0
        if shuffled:  # one fixed order, independent of the sweep seed (see SweepSettings.grid_order)
            random.Random(derive_seed(0, "grid-order", len(self.points))).shuffle(self.points)

    def propose(self) -> tuple[dict, Any] | None:
        if self.index >= len(self.points):
            return None
        self.index += 1
        return copy.deepcopy(self.points[self.index - 1]), self.index

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        """A grid is fixed in advance."""

    def tell_stopped(self, token: Any) -> None:
        """A grid is fixed in advance."""

    def tell_infeasible(self, token: Any, excess: float) -> None:
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
        directions: list[Literal["maximize", "minimize"]] = ["maximize" if o.maximize else "minimize"
                                                            for o in objectives]
        self.space, self.objectives = space, list(objectives)
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.asked: dict[int, Any] = {}  # trial number -> the Optuna trial not yet told
        self.seed, self.explored = seed, 0  # random points asked for by explore()

    def propose(self) -> tuple[dict, Any]:
        trial = self.study.ask()
        self.asked[trial.number] = trial
        return self.space.suggest(trial), trial.number

    def explore(self, accept: Callable[[dict], bool]) -> tuple[dict, Any] | None:
        """A random point ``accept`` takes (one not trained yet), asked of the study as an enqueued trial.

        TPE on a small discrete space keeps proposing networks it has seen (measured on
        fmnist-bench: 947 of 1,075 proposals were duplicates, and the sweep stopped with 128 of its
        224 networks trained, saying the space was used up). The point is drawn through the space's
        own Optuna walk on a recording trial, so its flat parameters are exactly what ``suggest``
        names; ``enqueue_trial`` then makes the next ``ask`` propose it, and the study learns from
        its result like any other trial's.
        """
        from search_spaces.params import EmptyRange

        for _ in range(EXPLORE_DRAWS):
            self.explored += 1
            recorder = RecordingTrial(random.Random(derive_seed(self.seed, "explore", self.explored)))
            try:
                config = self.space.suggest(recorder)
            except EmptyRange:
                continue
            if accept(config):
                self.study.enqueue_trial(recorder.params)
                return self.propose()
        return None

    def propose_point(self, config: dict) -> tuple[dict, Any]:
        """Ask the study for exactly ``config``: its flat parameters (named by the space's own Optuna
        walk) are enqueued, so the next ``ask`` proposes it and the study learns from its result."""
        from sweep.config.overrides import flatten

        recorder = RecordingTrial(random.Random(0), target=flatten(config))
        self.space.suggest(recorder)
        self.study.enqueue_trial(recorder.params)
        return self.propose()

    def tell(self, token: Any, values: Sequence[float] | None) -> None:
        import optuna

        trial = self.asked.pop(token, token)
        if values is None or any(v != v for v in values):  # failed, or NaN
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            if not isinstance(trial, int):
                trial.set_constraint(CONSTRAINT_KEY, -1.0)  # feasible: inside the budget
            self.study.tell(trial, list(values))

    def tell_stopped(self, token: Any) -> None:
        """PRUNED: TPE ranks pruned trials below every complete one (optuna.samplers._tpe.sampler.
        _split_trials), which is what an early stop says, without mixing a rung's accuracy into the
        final accuracies it splits into good and bad (a trial told FAIL would teach it nothing)."""
        import optuna

        trial = self.asked.pop(token, token)
        if not isinstance(trial, int):
            trial.set_constraint(CONSTRAINT_KEY, -1.0)
        self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    def tell_infeasible(self, token: Any, excess: float) -> None:
        """Complete, with the worst values and a violated constraint (``Trial.set_constraint``): TPE
        puts it below every feasible trial and learns where the infeasible region lies (the values
        of infeasible trials are never compared). Told FAIL, it would teach TPE nothing."""
        trial = self.asked.pop(token)
        trial.set_constraint(CONSTRAINT_KEY, max(excess, 1e-9))
        self.study.tell(trial, [0.0 if o.maximize else 1e30 for o in self.objectives])


def make_proposer(search: str, space: Any, objectives: Sequence[Objective], seed: int, num_samples: int,
                  grid_order: str = "declared") -> Proposer:
    """Explicit registry of proposal strategies by ``--search`` name."""
    if search == "optuna":
        return OptunaProposer(space, objectives, seed, num_samples)
    if search == "random":
        return RandomProposer(space, seed)
    if search == "grid":
        return GridProposer(space, shuffled=grid_order == "shuffled")
    raise ValueError(f"search: got {search!r}; must be one of optuna, random, grid")


CONSTRAINT_KEY = "budget"  # Optuna constraint: > 0 is over the space's budget (relative excess)
# After this many duplicates in a row, the searcher asks its proposer for an untrained point drawn at
# random instead of another proposal: uniformly among the untrained points of a finite space of at
# most EXPLORE_FINITE_POINTS points (exact: when none is left, every network is trained), else by
# EXPLORE_DRAWS seeded draws from the space (none found: the space is taken as used up).
EXPLORE_AFTER = 3
EXPLORE_FINITE_POINTS = 20_000
EXPLORE_DRAWS = 500


class RecordingTrial:
    """Stands in for an Optuna trial in ``space.suggest``: draws each value at random, records its name.

    The recorded ``params`` are the flat Optuna parameters of the drawn point, for
    ``study.enqueue_trial``: the same walk names them, so they cannot drift from ``suggest``.
    """

    def __init__(self, rng: random.Random, target: dict[str, Any] | None = None) -> None:
        from search_spaces.drawers import RandomDrawer

        self.drawer, self.target = RandomDrawer(rng), target  # with a target: its values, not random ones
        self.params: dict[str, Any] = {}

    def _targeted(self, name: str) -> Any:
        """The target's value for Optuna parameter ``name`` (a split: ``field.total``, then ``field.i``)."""
        assert self.target is not None
        if name in self.target:
            return self.target[name]
        field, _, part = name.rpartition(".")  # a depth split: its total, then one part per stage
        return sum(self.target[field]) if part == "total" else self.target[field][int(part)]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        value = self._targeted(name) if self.target is not None else self.drawer.integer(name, low, high, step, log)
        self.params[name] = int(value)
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None, log: bool = False) -> float:
        value = self._targeted(name) if self.target is not None else self.drawer.real(name, low, high, step, log)
        self.params[name] = float(value)
        return self.params[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if self.target is None:
            value = self.drawer.categorical(name, list(choices))
        else:  # non-scalar choices are suggested as JSON text (search_spaces.drawers.OptunaDrawer)
            value = self._targeted(name)
            value = value if value in list(choices) else json.dumps(value)
        self.params[name] = value
        return value
