"""The confirm stage: retrain a search sweep's candidates at full fidelity with several seeds.

A confirm stage is a sweep of its own (its own parent run tagged ``stage=confirm`` and
``confirm_of=<search sweep>``, one MLflow run per network and seed, resumable with
``resnetx sweep --resume``, GPU fractions as any sweep) whose points are fixed: the candidates
the space's ``confirm:`` rule picks from the search sweep's finished trials, each with
``train.seed`` 0..R-1 (the searcher derives the real seed from it), trained with the space's
``final:`` recipe (applied as overrides, before ``--set``). :class:`ConfirmSpace` is the
search space narrowed to those points, so the searcher, de-duplication, seeds and counts are
the ones every sweep uses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from reports import schema
from reports.confirm import candidates
from reports.pareto import Objective
from resnetx.errors import ConfigError

CONFIG_PREFIXES = ("model.", "data.", "train.")


@dataclass
class ConfirmChoice:
    """What the confirm stage retrains: the candidates (one search-stage row each) and why."""

    rows: Any  # the search sweep's rows of the chosen networks (a DataFrame)
    rule: str
    seeds: int
    noise: float | None
    networks: int  # distinct finished networks the rule chose from


class ConfirmSpace:
    """A search space narrowed to fixed points: candidates x seeds (``--search grid`` walks them).

    Everything else (name, objectives, reference point, input size, data) is the search space's.
    Seeds are an axis, so replicates of one network are not de-duplicated; the budget was met
    in the search stage, so no candidate is refused for it."""

    def __init__(self, space: Any, points: list[dict]) -> None:
        self._space, self._points = space, points
        self.pretrain = None  # candidates retrain from scratch with the final recipe
        self.seed_is_axis = True
        self.is_grid = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_space", "_points"):
            raise AttributeError(name)  # unpickling: before __dict__ is back
        return getattr(self._space, name)

    def sample(self, rng: Any = None, max_tries: int = 0) -> dict:
        """The first candidate: what the plan validates and loads the shared data for."""
        return copy.deepcopy(self._points[0])

    def every_point(self, limit: int | None = None) -> list[dict]:
        return copy.deepcopy(self._points)

    grid = every_point

    def count_distinct(self) -> int:
        return len(self._points)

    def budget_excess(self, config: Any) -> float:
        return -1.0

    def budget_violation(self, config: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"ConfirmSpace({self._space.name!r}, points={len(self._points)})"


def network_rows(trials: Any, objectives: list[Objective]) -> Any:
    """One row per finished network of a search sweep (its replicates' objective means)."""
    done = trials[trials[schema.TAG_STATUS].isin(schema.RANKABLE_STATUSES)]
    names = [o.name for o in objectives]
    done = done.dropna(subset=names)
    if done.empty:
        return done
    means = done.groupby(schema.TAG_MODEL_HASH, sort=False)[names].mean()
    first = done.drop_duplicates(schema.TAG_MODEL_HASH).set_index(schema.TAG_MODEL_HASH)
    first[names] = means.loc[first.index, names]
    return first.reset_index()


def choose(trials: Any, objectives: list[Objective], rule: str, seeds: int, noise: float | None) -> ConfirmChoice:
    """The search sweep's candidates by ``rule`` (reports.confirm.candidates)."""
    rows = network_rows(trials, objectives)
    if rows.empty:
        raise ConfigError("--sweep", "search sweep", "has no finished trial to confirm")
    values = rows[[o.name for o in objectives]].to_numpy(dtype=float)
    picked = candidates(np.asarray(values), objectives, rule, noise)
    return ConfirmChoice(rows.iloc[picked].reset_index(drop=True), rule, seeds, noise, len(rows))


def point_of(row: Any) -> dict[str, dict[str, Any]]:
    """A search trial's nested config (model, data, train) from its flattened params, seed left out."""
    point: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    for column, value in row.items():
        if not isinstance(column, str) or not column.startswith(CONFIG_PREFIXES):
            continue
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        section, key = column.split(".", 1)
        point[section][key] = value.item() if isinstance(value, np.generic) else value
    point["train"].pop("seed", None)
    return point


def confirm_points(choice: ConfirmChoice) -> list[dict]:
    """Every candidate with ``train.seed`` 0..R-1, seeds outermost (a partial stage has all networks)."""
    base = [point_of(row) for _, row in choice.rows.iterrows()]
    points = []
    for replicate in range(choice.seeds):
        for point in base:
            one = copy.deepcopy(point)
            one["train"]["seed"] = replicate
            points.append(one)
    return points


def final_overrides(space: Any) -> dict[str, dict[str, Any]]:
    """The final recipe as overrides (what ``--set`` then changes)."""
    return copy.deepcopy(getattr(space, "final", None) or {})


# What a confirm stage takes from its search sweep's recorded settings (the rest is its own).
INHERITED = ("space", "objectives", "trainable", "record", "cpus_per_trial", "gpus_per_trial", "seed")


def search_sweep(tracking_uri: str, experiment: str, sweep_run_id: str | None) -> tuple[str, dict[str, Any]]:
    """(run id, recorded settings) of the search sweep to confirm: ``sweep_run_id``, else the
    experiment's latest sweep that is not itself a confirm stage."""
    import json

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from reports.runs import find_experiment, search_all

    client = MlflowClient(tracking_uri)
    experiment_id = find_experiment(client, experiment, tracking_uri)
    if sweep_run_id:
        try:
            run = client.get_run(sweep_run_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError("--sweep", sweep_run_id, f"no such run in {schema.shown_uri(tracking_uri)}") from None
        if run.data.tags.get(schema.TAG_ROLE) != schema.ROLE_SWEEP or run.info.experiment_id != experiment_id:
            raise ConfigError("--sweep", sweep_run_id, f"is not a sweep (role=sweep) run of experiment {experiment!r}")
    else:
        sweeps = search_all(client, experiment_id, f"tags.{schema.TAG_ROLE} = '{schema.ROLE_SWEEP}'",
                            order_by=["attributes.start_time DESC"])
        run = next((r for r in sweeps if r.data.tags.get(schema.TAG_STAGE) != schema.STAGE_CONFIRM), None)
        if run is None:
            raise ConfigError("--experiment", experiment, "holds no search sweep to confirm")
    if run.data.tags.get(schema.TAG_STAGE) == schema.STAGE_CONFIRM:
        raise ConfigError("--sweep", run.info.run_id, "is a confirm stage; give the search sweep it confirmed")
    recorded = json.loads(run.data.tags.get(schema.TAG_SETTINGS) or "{}")
    return run.info.run_id, {k: v for k, v in recorded.items() if k in INHERITED}
