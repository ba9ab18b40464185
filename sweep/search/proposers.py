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


# The finished trials TPE learns from, at most (OptunaProposer's ``history``). Bounded, an ask costs
# what ~1,250 trials cost (~25 ms on 2 cores) at any size; unbounded, 0.3 s at 10,000 trials. It
# never bites before 1,250 finished study trials (duplicates and over-budget points count), so every
# sweep of the recorded benchmarks (<= ~1,000) proposes exactly what it did; docs/benchmarks.md
# ("Driver scale") shows the search quality windows of 10-20% of a sweep keep on the record.
TPE_HISTORY = 1_000
# ... with three objectives or more. An ask over ~1,250 trials costs ~60-90 ms there (the split into
# good and bad trials ranks them by non-domination and breaks ties by hypervolume subset selection,
# dearer with each objective), so the bound is smaller: at 10,000 trials a suggestion took 34 ms
# median with 400 against 43-47 ms with 500 and 88 ms with 1,000. The record's 3-objective quality
# at proportional windows is in docs/benchmarks.md ("Three objectives").
TPE_HISTORY_MANY_OBJECTIVES = 400


def default_history(objectives: int) -> int:
    """The history bound a TPE proposer over ``objectives`` objectives gets unless told otherwise."""
    return TPE_HISTORY if objectives <= 2 else TPE_HISTORY_MANY_OBJECTIVES


class OptunaProposer:
    """Optuna ask/tell with a seeded TPE sampler (multi-objective when several objectives).

    ``history``: the most finished trials the sampler learns from (None: all; "default":
    :func:`default_history` for the number of objectives). TPE reads its whole
    study at every ``ask`` (the split into good and bad trials, both Parzen estimators, the group
    search space: ~25 us per trial on the 2-core machine, 0.3 s at 10,000 trials; bench/driver_scale.py).
    With a bound, once the study holds ``history * 5/4`` finished trials a fresh study takes the
    place of the old one with ``history`` of them: the best half of the bound (whole Pareto fronts
    of the feasible complete trials, the most recent first within the front that does not fit)
    and the most recent others, plus the trials still running (TPE's constant liar counts them);
    its sampler is seeded from (seed, the number of such windows), so a sweep stays reproducible.
    Every trial keeps its token across windows, so the searcher tells it as before.
    """

    def __init__(self, space: Any, objectives: Sequence[Objective], seed: int, num_samples: int,
                 history: int | Literal["default"] | None = "default") -> None:
        import optuna

        if history == "default":
            history = default_history(len(objectives))
        if history is not None and history < 10:
            raise ValueError(f"history: got {history!r}; must be None or >= 10 trials")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.n_startup_trials = max(3, min(10, num_samples // 3))
        self.directions: list[Literal["maximize", "minimize"]] = ["maximize" if o.maximize else "minimize"
                                                                 for o in objectives]
        self.space, self.objectives = space, list(objectives)
        self.study = optuna.create_study(directions=self.directions, sampler=self._sampler(seed))
        self.asked: dict[int, Any] = {}  # token (trial number + offset) -> the Optuna trial not yet told
        self.seed, self.explored = seed, 0  # random points asked for by explore()
        self.history, self.windows = history, 0  # the bound, and how many fresh studies it started
        self.offset = 0  # tokens of earlier studies' trials: a new trial's token is its number + offset
        self.finished = 0  # finished trials in self.study

    def _sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials, multivariate=True,
                                          group=True, constant_liar=True)

    def propose(self) -> tuple[dict, Any]:
        trial = self.study.ask()
        token = trial.number + getattr(self, "offset", 0)  # a proposer pickled before the bound: 0
        self.asked[token] = trial
        return self.space.suggest(trial), token

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
        self._bound_history()

    def tell_stopped(self, token: Any) -> None:
        """PRUNED: TPE ranks pruned trials below every complete one (optuna.samplers._tpe.sampler.
        _split_trials), which is what an early stop says, without mixing a rung's accuracy into the
        final accuracies it splits into good and bad (a trial told FAIL would teach it nothing)."""
        import optuna

        trial = self.asked.pop(token, token)
        if not isinstance(trial, int):
            trial.set_constraint(CONSTRAINT_KEY, -1.0)
        self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        self._bound_history()

    def tell_infeasible(self, token: Any, excess: float) -> None:
        """Complete, with the worst values and a violated constraint (``Trial.set_constraint``): TPE
        puts it below every feasible trial and learns where the infeasible region lies (the values
        of infeasible trials are never compared). Told FAIL, it would teach TPE nothing."""
        trial = self.asked.pop(token)
        trial.set_constraint(CONSTRAINT_KEY, max(excess, 1e-9))
        self.study.tell(trial, [0.0 if o.maximize else 1e30 for o in self.objectives])
        self._bound_history()

    def _bound_history(self) -> None:
        """After a tell: past ``history * 5/4`` finished trials, go on in a fresh study of ``history``."""
        history = getattr(self, "history", None)
        if history is None:
            return
        self.finished += 1
        if self.finished <= history + max(1, history // 4):
            return
        import optuna

        trials = self.study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        kept = self._window([t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                                 optuna.trial.TrialState.PRUNED)], history)
        self.windows += 1
        study = optuna.create_study(directions=self.directions,
                                    sampler=self._sampler(derive_seed(self.seed, "tpe-window", self.windows)))
        study.add_trials(kept + running)
        added = study.get_trials(deepcopy=False)
        new_id = {old.number: new._trial_id for old, new in zip(kept + running, added)}
        self.asked = {token: optuna.trial.Trial(study, new_id[trial.number]) for token, trial in self.asked.items()}
        self.offset += len(trials) - len(added)  # the next trial's token follows the old study's last
        self.study, self.finished = study, len(kept)

    def _window(self, finished: list[Any], history: int) -> list[Any]:
        """``history`` of the finished trials, in their order: the best half of the bound (whole fronts
        of the feasible complete trials by non-dominated rank, the most recent first in the front that
        does not fit), then the most recent of the others."""
        import numpy as np
        import optuna

        from reports.pareto import non_dominated_sort

        feasible = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE and t.values is not None
                    and all(v <= 0 for v in t.constraints.values())]
        best: set[int] = set()
        if feasible:
            ranks = non_dominated_sort(np.asarray([t.values for t in feasible], dtype=float),
                                       [o.maximize for o in self.objectives])
            order = sorted(range(len(feasible)), key=lambda i: (ranks[i] if ranks[i] >= 0 else len(feasible),
                                                                -feasible[i].number))
            best = {feasible[i].number for i in order[: history // 2]}
        recent = [t.number for t in reversed(finished) if t.number not in best][: history - len(best)]
        keep = best | set(recent)
        return [t for t in finished if t.number in keep]


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
# ... and after the first miss once the proposer's study has outgrown its history bound (a windowed
# TPE, beyond history * 5/4 finished trials): each ask then reads ~1,000 trials (35 ms with 3
# objectives on the 2-core machine) and a large study repeats itself more, so asking up to three
# times made a suggestion cost 2.7 asks (bench/driver_scale.py). No recorded sweep reaches a window,
# so they propose exactly what they did.
EXPLORE_AFTER_WINDOWED = 1
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
