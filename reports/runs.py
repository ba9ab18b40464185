"""Read a sweep back from MLflow into a pandas DataFrame (the store is the source of truth).

No Ray state is needed: the parent run (``tags.role = "sweep"``) carries the sweep settings,
its child runs are the trials (layout in docs/architecture.md, names in ``reports.schema``).
When an experiment holds no sweep at all, its single ``resnetx train`` runs
(``tags.role = "train"``) are read instead, as a parentless pseudo-sweep, so that a handful of
hand-run trainings can be ranked and exported the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from reports import schema
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import DEFAULT_OBJECTIVES, Objective, parse_objectives
from resnetx.errors import ConfigError

KIND_SWEEP, KIND_TRAIN = "sweep", "train"
_PAGE = 1000
_INT = re.compile(r"[+-]?\d+")
# MLflow's own run status, for runs that carry no ``status`` tag
_RUN_STATUS = {"FINISHED": schema.STATUS_FINISHED, "FAILED": schema.STATUS_FAILED,
               "KILLED": schema.STATUS_FAILED, "RUNNING": schema.STATUS_RUNNING,
               "SCHEDULED": schema.STATUS_RUNNING}
# Tag columns copied into the trials frame, in this order
TAG_COLUMNS = (schema.TAG_TRIAL_ID, schema.TAG_STATUS, schema.TAG_CONFIG_HASH, schema.TAG_MODEL_HASH,
               schema.TAG_DATASET, schema.TAG_SPACE, schema.TAG_SEARCH, schema.TAG_STAGE)
BASE_COLUMNS = ("run_id", "run_name", *TAG_COLUMNS, "run_status", "start_time", "end_time", "duration_s")


@dataclass(frozen=True)
class ParentRun:
    """The sweep's parent run: its settings live in its tags and params."""

    run_id: str
    run_name: str
    status: str
    tags: dict[str, str]
    params: dict[str, Any]
    start_time: pd.Timestamp | None
    end_time: pd.Timestamp | None


@dataclass
class SweepRuns:
    """One sweep (or the ``train`` runs of an experiment) as read from MLflow."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    kind: str  # KIND_SWEEP or KIND_TRAIN
    parent: ParentRun | None
    trials: pd.DataFrame  # one row per trial run; columns: BASE_COLUMNS, metrics, params ("model.fold", ...)
    param_columns: list[str] = field(default_factory=list)
    metric_columns: list[str] = field(default_factory=list)
    # run id -> the report's own tags (pareto_rank, on_front) as they are now, to skip no-op writes
    report_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    # how the sweep was chosen: "given" (--sweep), "latest" (the latest sweep that has trials)
    # or "train" (no sweep: the experiment's train runs); newer sweeps passed over for having no trials
    chosen: str = "given"
    skipped: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line saying which runs were read and why: what report/export/ui print first."""
        if self.parent is None:
            return f"train runs of experiment {self.experiment!r} ({len(self.trials)}; it holds no sweep)"
        text = f"sweep {self.parent.run_name or '?'} (run {self.parent.run_id}, {len(self.trials)} trials"
        if self.chosen == "given":
            return text + ", given by --sweep)"
        text += ", the latest sweep with trials; pick another with --sweep RUN_ID)"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} newer sweep(s) without trials: {', '.join(self.skipped)}"
        return text

    @property
    def sweep_run_id(self) -> str | None:
        return self.parent.run_id if self.parent else None

    @property
    def objectives_tag(self) -> str | None:
        return self.parent.tags.get(schema.TAG_OBJECTIVES) if self.parent else None


def parse_param(text: str) -> Any:
    """Type a logged param back: ``"2"`` -> 2, ``"0.1"`` -> 0.1, ``"True"`` -> True, ``"[2, 2]"`` -> [2, 2].

    MLflow stores params as strings (``sweep.tracking.store`` writes ``str(value)``, lists as
    ``[a, b]`` and None as ``null``). Plain YAML would also turn ``"yes"`` into True and leave
    ``"1e-05"`` a string, so the scalar cases are decided here and YAML only parses lists.
    """
    if not isinstance(text, str):
        return text
    s = text.strip()
    lowered = s.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    if _INT.fullmatch(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        pass
    if s.startswith(("[", "{")) and s.endswith(("]", "}")):
        try:
            value = yaml.safe_load(s)
        except yaml.YAMLError:
            return text
        return _type_nested(value)
    return text


def _type_nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_type_nested(v) for v in value]
    if isinstance(value, dict):
        return {k: _type_nested(v) for k, v in value.items()}
    return parse_param(value) if isinstance(value, str) else value


def _timestamp(ms: int | None) -> pd.Timestamp | None:
    return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else None


def check_store(tracking_uri: str, field: str = "--runs-dir") -> None:
    """Reading must never create a store: a missing sqlite file is a user error, not an empty store."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.is_file():
            raise ConfigError(field, str(db.parent), "holds no MLflow store (mlflow.db); run `resnetx sweep` first")


def search_all(client: Any, experiment_id: str, filter_string: str,
               order_by: list[str] | None = None) -> Iterator[Any]:
    """Every active run matching ``filter_string``, page by page."""
    from mlflow.entities import ViewType

    token = None
    while True:
        page = retry(lambda t=token: client.search_runs(
            [experiment_id], filter_string=filter_string, run_view_type=ViewType.ACTIVE_ONLY,
            max_results=_PAGE, order_by=order_by, page_token=t))
        yield from page
        token = page.token
        if not token:
            return


def find_experiment(client: Any, experiment: str, tracking_uri: str) -> str:
    found = retry(lambda: client.get_experiment_by_name(experiment))
    if found is None or found.lifecycle_stage != "active":
        names = sorted(e.name for e in retry(lambda: client.search_experiments()))
        known = ", ".join(names) or "none"
        raise ConfigError("--experiment", experiment, f"not found in {schema.shown_uri(tracking_uri)}; known: {known}")
    return found.experiment_id


def _parent_from_run(run: Any) -> ParentRun:
    return ParentRun(run_id=run.info.run_id, run_name=run.info.run_name or "", status=run.info.status,
                     tags=dict(run.data.tags), params={k: parse_param(v) for k, v in run.data.params.items()},
                     start_time=_timestamp(run.info.start_time), end_time=_timestamp(run.info.end_time))


def trial_row(run: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """One trial run as a flat row (ids, tags, times, metrics' latest values, typed params),
    plus the names of its metric and param columns."""
    tags = run.data.tags
    start, end = _timestamp(run.info.start_time), _timestamp(run.info.end_time)
    row: dict[str, Any] = {"run_id": run.info.run_id, "run_name": run.info.run_name or ""}
    for tag in TAG_COLUMNS:
        row[tag] = tags.get(tag)
    row[schema.TAG_STATUS] = tags.get(schema.TAG_STATUS) or _RUN_STATUS.get(run.info.status, schema.STATUS_FAILED)
    row[schema.TAG_STAGE] = tags.get(schema.TAG_STAGE) or schema.STAGE_SEARCH
    row["run_status"] = run.info.status
    row["start_time"], row["end_time"] = start, end
    row["duration_s"] = (end - start).total_seconds() if start is not None and end is not None else math.nan
    metrics, params = [], []
    for key, value in run.data.metrics.items():
        name = key if key not in row else f"metric.{key}"
        row[name] = float(value)
        metrics.append(name)
    for key, value in run.data.params.items():
        name = key if key not in row else f"param.{key}"
        row[name] = parse_param(value)
        params.append(name)
    return row, metrics, params


TrialRow = tuple[Mapping[str, Any], list[str], list[str]]


def trials_frame(rows: list[TrialRow]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Rows -> DataFrame in a stable column order, trials in start order (the order they ran)."""
    metric_keys = {m for _, metrics, _ in rows for m in metrics}
    param_keys = {p for _, _, params in rows for p in params} - metric_keys
    known = [m for m in (*schema.FINAL_METRICS, *schema.EPOCH_METRICS) if m in metric_keys]
    metrics = known + sorted(metric_keys - set(known))
    params = sorted(param_keys)
    frame = pd.DataFrame([row for row, _, _ in rows], columns=[*BASE_COLUMNS, *metrics, *params])
    for column in metrics:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    if len(frame):
        frame = frame.sort_values(["start_time", "trial_id", "run_id"], kind="stable", na_position="last")
        frame = frame.reset_index(drop=True)
    return frame, params, metrics


def _is_trial(run: Any) -> bool:
    return run.data.tags.get(schema.TAG_ROLE, schema.ROLE_TRIAL) == schema.ROLE_TRIAL


def has_trials(client: Any, experiment_id: str, sweep_run_id: str) -> bool:
    """True when at least one trial run (a child run that is not another sweep) names this sweep its parent."""
    page = retry(lambda: client.search_runs([experiment_id], filter_string=f"tags.`{schema.TAG_PARENT}` = "
                                            f"'{sweep_run_id}'", max_results=100))
    return any(_is_trial(r) for r in page)


def latest_sweep_with_trials(client: Any, experiment_id: str) -> tuple[Any, list[Any]]:
    """(the newest sweep parent run that has trials, the newer sweep runs passed over for having none).

    Without any sweep that has trials, the newest sweep is returned (so a report still says
    which sweep it read and that it holds nothing); ``(None, [])`` when there is no sweep at all.
    """
    passed: list[Any] = []
    newest = None
    for run in search_all(client, experiment_id, f"tags.{schema.TAG_ROLE} = '{schema.ROLE_SWEEP}'",
                          order_by=["attributes.start_time DESC"]):
        newest = newest or run
        if has_trials(client, experiment_id, run.info.run_id):
            return run, passed
        passed.append(run)
    return newest, []


def read_sweep_runs(tracking_uri: str, experiment: str = schema.DEFAULT_EXPERIMENT,
               sweep_run_id: str | None = None) -> SweepRuns:
    """Read one sweep: ``sweep_run_id``, else the latest sweep in ``experiment`` that has trials.

    Newer sweeps without a single trial (one that failed before its first trial started, or
    one that has just begun) are passed over and named in ``skipped``: an empty parent run must
    not hide the sweep a user means. ``describe()`` says which sweep was taken.
    Without any sweep in the experiment, the ``resnetx train`` runs are returned instead
    (``kind == "train"``, ``parent is None``). One-line :class:`ConfigError` when there is
    nothing to read.
    """
    check_store(tracking_uri, "--tracking-uri" if not tracking_uri.startswith("sqlite:///") else "--runs-dir")
    client = mlflow_client(tracking_uri)
    experiment_id = find_experiment(client, experiment, tracking_uri)
    if sweep_run_id:
        from mlflow.exceptions import MlflowException

        try:
            run = retry(lambda: client.get_run(sweep_run_id))
        except MlflowException as exc:  # only "not found" means no such run; a store error stays an error
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError("--sweep", sweep_run_id, f"no such run in {schema.shown_uri(tracking_uri)}") from None
        if run.info.experiment_id != experiment_id or run.data.tags.get(schema.TAG_ROLE) != schema.ROLE_SWEEP:
            raise ConfigError("--sweep", sweep_run_id, f"is not a sweep (role=sweep) run of experiment {experiment!r}")
        parent: ParentRun | None = _parent_from_run(run)
        chosen, skipped = "given", ()
    else:
        latest, passed = latest_sweep_with_trials(client, experiment_id)
        parent = _parent_from_run(latest) if latest is not None else None
        chosen, skipped = ("latest" if parent else "train"), tuple(r.info.run_name or r.info.run_id for r in passed)
    if parent is not None:
        runs = search_all(client, experiment_id, f"tags.`{schema.TAG_PARENT}` = '{parent.run_id}'")
        runs = [r for r in runs if _is_trial(r)]
        kind = KIND_SWEEP
    else:
        runs = list(search_all(client, experiment_id, f"tags.{schema.TAG_ROLE} = '{schema.ROLE_TRAIN}'"))
        if not runs:
            raise ConfigError("--experiment", experiment, "holds no sweep (role=sweep) and no train runs to report")
        kind = KIND_TRAIN
    frame, params, metrics = trials_frame([trial_row(r) for r in runs])
    report_tags = {r.info.run_id: {k: v for k, v in r.data.tags.items()
                                   if k in (schema.TAG_PARETO_RANK, schema.TAG_ON_FRONT)} for r in runs}
    return SweepRuns(tracking_uri=tracking_uri, experiment=experiment, experiment_id=experiment_id, kind=kind,
                     parent=parent, trials=frame, param_columns=params, metric_columns=metrics,
                     report_tags=report_tags, chosen=chosen, skipped=skipped)


def resolve_objectives(objectives: str | Sequence[Objective] | None, sweep: SweepRuns) -> list[Objective]:
    """Explicit objectives win; then the sweep's ``objectives`` tag; then val_acc:max,params:min."""
    if objectives is None:
        tag = sweep.objectives_tag
        return parse_objectives(tag, field=f"tags.{schema.TAG_OBJECTIVES}") if tag else parse_objectives(
            DEFAULT_OBJECTIVES)
    if isinstance(objectives, str):
        return parse_objectives(objectives)
    return list(objectives)
