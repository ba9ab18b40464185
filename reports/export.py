"""Export chosen trials of a sweep as standalone experiment configs (YAML with provenance).

Each file is the trial's logged ``config.yaml`` artifact (sections ``model``, ``data``,
``train``; exactly what was trained) plus a ``provenance:`` section saying where it came
from. ``resnetx show FILE`` rebuilds the model from ``model:``; ``resnetx train FILE``
retrains it (``provenance`` is ignored there).

All-or-nothing: every chosen config is downloaded and validated before the first file is
written; files are written to temp names and renamed into place, so an interrupted or failed
export leaves no partial or half-written YAML behind.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from reports import schema
from reports.analysis import RANK, accuracy_objective, check_objectives, rank_trials
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import DEFAULT_OBJECTIVES, Objective, parse_objectives
from reports.provenance import package_versions, utc_now
from reports.runs import SweepRuns, load_sweep
from resnetx.errors import ConfigError

# Metrics where smaller is better, for ``--by METRIC`` without an explicit direction.
MINIMISED_METRICS = frozenset({"val_loss", "train_loss", "epoch_time_s", "params", "flops", "latency_ms",
                               "train_time_s"})
PROVENANCE_KEY = "provenance"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Selection:
    """Which trials to export: the front, the top K by a metric, and/or those under a parameter budget."""

    front: bool = False
    top: int | None = None
    by: str | None = None  # "val_acc" or "val_acc:max"
    max_params: float | None = None

    def describe(self) -> str:
        parts = []
        if self.front:
            parts.append("pareto front")
        if self.top is not None:
            parts.append(f"top {self.top} by {self.by}")
        if self.max_params is not None:
            parts.append(f"params <= {self.max_params:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Exported:
    path: Path
    run_id: str
    run_name: str
    config_hash: str | None
    metrics: dict[str, float]


def _sort_key(by: str, objectives: Sequence[Objective]) -> Objective:
    """``val_acc`` / ``val_acc:max`` -> an Objective; direction from the objectives, else by name."""
    if ":" in by:
        return parse_objectives(by, field="--by")[0]
    for o in objectives:
        if o.name == by:
            return o
    return Objective(by, by not in MINIMISED_METRICS)


def select(ranked: pd.DataFrame, selection: Selection, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The chosen rankable trials, best first, one per config hash (duplicates and repeat seeds collapse)."""
    if not (selection.front or selection.top is not None or selection.max_params is not None):
        raise ConfigError("selection", None, "choose --front, --top K --by METRIC, or --max-params P")
    if selection.top is not None and selection.top < 1:
        raise ConfigError("--top", selection.top, "must be >= 1")
    chosen = ranked[ranked[RANK] >= 0]
    if selection.max_params is not None:
        if schema.PARAMS_METRIC not in chosen.columns:
            raise ConfigError("--max-params", selection.max_params, "the runs have no params metric")
        chosen = chosen[chosen[schema.PARAMS_METRIC] <= selection.max_params]
    if selection.front:
        chosen = chosen[chosen[RANK] == 0]
    top, by = selection.top, selection.by
    if top is None and not selection.front:  # --max-params alone: the best network under the budget
        top, by = 1, by or accuracy_objective(objectives) or objectives[0].name
    if top is not None:
        if not by:
            raise ConfigError("--by", None, "--top needs --by METRIC (e.g. --by val_acc)")
        key = _sort_key(by, objectives)
        if key.name not in chosen.columns:
            raise ConfigError("--by", by, "is not a metric of these runs")
        chosen = chosen[chosen[key.name].notna()]
        chosen = chosen.sort_values(key.name, ascending=not key.maximize, kind="stable")
    hashes = chosen[schema.TAG_CONFIG_HASH].fillna(chosen["run_id"]) if len(chosen) else chosen["run_id"]
    chosen = chosen[~hashes.duplicated()]
    return chosen.head(top) if top is not None else chosen


def read_config_artifact(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """The trial's ``config.yaml`` as a mapping with a ``model`` section, or a one-line ConfigError."""
    client = mlflow_client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="resnetx-export-") as tmp:
        try:
            local = retry(lambda: client.download_artifacts(run_id, schema.CONFIG_ARTIFACT, tmp))
            text = Path(local).read_text(encoding="utf-8")
        except Exception:
            raise ConfigError("run", run_id, f"has no readable {schema.CONFIG_ARTIFACT} artifact") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError("run", run_id, f"{schema.CONFIG_ARTIFACT} is not valid YAML") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ConfigError("run", run_id, f"{schema.CONFIG_ARTIFACT} has no model: section")
    return data


def check_model(config: Mapping[str, Any]) -> None:
    """The always-on check: the model section builds a valid ResNetXConfig."""
    from resnetx import ResNetXConfig

    ResNetXConfig(**config["model"])


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def provenance(row: pd.Series, sweep: SweepRuns, selection: Selection,
               objectives: Sequence[Objective]) -> dict[str, Any]:
    metrics = {m: _plain(row[m]) for m in sweep.metric_columns if m in row.index and _plain(row[m]) is not None}
    return {
        "mlflow_run_id": row["run_id"],
        "mlflow_run_name": _plain(row.get("run_name")) or None,
        "experiment": sweep.experiment,
        "tracking_uri": sweep.tracking_uri,
        "sweep_run_id": sweep.sweep_run_id,
        "trial_id": _plain(row.get(schema.TAG_TRIAL_ID)),
        "status": row[schema.TAG_STATUS],
        "config_hash": _plain(row.get(schema.TAG_CONFIG_HASH)),
        "model_hash": _plain(row.get(schema.TAG_MODEL_HASH)),
        "dataset": _plain(row.get(schema.TAG_DATASET)),
        "pareto_rank": int(row[RANK]),
        "objectives": ",".join(str(o) for o in objectives),
        "selection": selection.describe(),
        "metrics": metrics,
        "package_versions": package_versions(),
        "exported_at": utc_now(),
    }


def file_name(index: int, row: pd.Series) -> str:
    name = _SAFE.sub("-", str(_plain(row.get("run_name")) or _plain(row.get(schema.TAG_TRIAL_ID)) or "trial"))
    return f"{index:02d}-{name.strip('-')[:40]}-{row['run_id'][:8]}.yaml"


def write_all_or_nothing(files: Mapping[Path, str]) -> None:
    """Write every file to a temp name first, then rename each into place; on failure remove the temps."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)


def export_configs(tracking_uri: str, experiment: str, out_dir: str | Path, selection: Selection,
                   sweep_run_id: str | None = None, objectives: str | Sequence[Objective] | None = None,
                   validate: Callable[[dict[str, Any]], None] | None = None) -> list[Exported]:
    """Write one YAML per chosen trial to ``out_dir``; returns what was written, best first.

    ``validate`` (e.g. building ``sweep.experiment.ExperimentConfig``) runs on every config
    before anything is written; the model section is always checked. Raises ConfigError when
    nothing matches the selection.
    """
    sweep = load_sweep(tracking_uri, experiment, sweep_run_id)
    if objectives is None:
        objectives = sweep.objectives_tag or DEFAULT_OBJECTIVES
    chosen_objectives = parse_objectives(objectives) if isinstance(objectives, str) else list(objectives)
    trials = check_objectives(sweep.trials, chosen_objectives, sweep.metric_columns)
    ranked, _ = rank_trials(trials, chosen_objectives)
    chosen = select(ranked, selection, chosen_objectives)
    if chosen.empty:
        raise ConfigError("selection", selection.describe(), "matches no finished trial")
    out = Path(out_dir)
    texts: dict[Path, str] = {}
    results = []
    for index, (_, row) in enumerate(chosen.iterrows(), start=1):
        config = read_config_artifact(tracking_uri, row["run_id"])
        config.pop(PROVENANCE_KEY, None)
        try:
            check_model(config)
            if validate is not None:
                validate(config)
        except ConfigError as exc:
            raise ConfigError(f"run {row['run_id']} {exc.field}", exc.value, exc.allowed) from None
        prov = provenance(row, sweep, selection, chosen_objectives)
        document = {**config, PROVENANCE_KEY: prov}
        header = (f"# ResNetX config exported from MLflow run {row['run_id']} ({selection.describe()}).\n"
                  "# `resnetx show FILE` rebuilds the model; `resnetx train FILE` retrains it.\n")
        path = out / file_name(index, row)
        texts[path] = header + yaml.safe_dump(document, sort_keys=False)
        results.append(Exported(path=path, run_id=row["run_id"], run_name=str(prov["mlflow_run_name"] or ""),
                                config_hash=prov["config_hash"], metrics=prov["metrics"]))
    out.mkdir(parents=True, exist_ok=True)
    write_all_or_nothing(texts)
    return results
