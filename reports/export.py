"""Export chosen trials of a sweep as standalone experiment configs (YAML with provenance).

Each file is the trial's logged ``config.yaml`` artifact (sections ``model``, ``data``,
``train``; exactly what was trained) plus a ``provenance:`` section saying where it came
from. ``resnetx show FILE`` rebuilds the model from ``model:``; ``resnetx train FILE``
retrains it (``provenance`` is ignored there).

All-or-nothing: every chosen config is downloaded and validated before the first file is
written; files are written to temp names and renamed into place, the renames undone if one
fails, so an interrupted or failed export leaves no partial or half-written set behind. An
export into a folder replaces the files of an earlier export there (YAMLs with the export
header, and their weights); other files in the folder are left alone.

With ``with_weights``, each chosen trial's trained weights are written next to its YAML
(same name, ``.pt``): the model state dict of the trial's last checkpoint kept by Tune, as a
plain state dict of CPU tensors (``torch.load(..., weights_only=True)`` reads it; safetensors
is not a dependency). The YAML's ``provenance.weights`` records the file, its SHA-256, the
epoch it is from and the checkpoint it came from, so ``resnetx show`` and
``resnetx.build_model(FILE, weights=...)`` can tell the exported file from any other. Where
Tune keeps them: the parent run's ``tune_path`` tag names Tune's experiment folder, whose trial
folders carry the trial id (the child run's ``trial_id`` tag) in their names and hold
``checkpoint_NNNNNN/checkpoint.pt``. A checkpoint that is gone (deleted, another machine's
disk) costs that trial its weights, not the export: its config is still written and
:attr:`Exported.weights_note` says why in one line.
"""

from __future__ import annotations

import hashlib
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

from reports import confirm, schema
from reports.analysis import RANK, accuracy_objective, check_objectives, rank_trials
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import DEFAULT_OBJECTIVES, Objective, parse_objectives
from reports.provenance import package_versions, utc_now
from reports.runs import SweepRuns, read_sweep_runs
from resnetx.errors import ConfigError

# Metrics where smaller is better, for ``--by METRIC`` without an explicit direction.
MINIMISED_METRICS = frozenset({"val_loss", "train_loss", "epoch_time_s", "params", "flops", "latency_ms",
                               "train_time_s"})
PROVENANCE_KEY = "provenance"
WEIGHTS_KEY = "weights"  # provenance.weights: file, sha256, format, epoch, val_acc, checkpoint
WEIGHTS_SUFFIX = ".pt"
WEIGHTS_FORMAT = "torch state_dict (torch.load(path, weights_only=True))"
# Written by the sweep, read here; reports may not import sweep, so the names are repeated and
# tests/test_export_weights.py checks them against sweep.tune.runner.TAG_TUNE_PATH and
# sweep.training.checkpoint (CHECKPOINT_FILE, the "model" key of a checkpoint).
TAG_TUNE_PATH = "tune_path"
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_MODEL_KEY = "model"
_CHECKPOINT_DIR = re.compile(r"checkpoint_(\d+)")
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
    weights: Path | None = None  # written next to ``path`` (with_weights and a checkpoint found)
    weights_note: str | None = None  # one line: why there are no weights for this trial


class WeightsUnavailable(Exception):
    """A trial's trained weights cannot be exported; the message is the one-line reason."""


@dataclass(frozen=True)
class TrainedWeights:
    """A trial's model state dict, serialised, and where it came from."""

    data: bytes
    sha256: str
    checkpoint: Path
    epoch: int | None
    val_acc: float | None


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
    chosen = chosen[~network_keys(chosen).duplicated()]
    return chosen.head(top) if top is not None else chosen


def network_keys(trials: pd.DataFrame) -> pd.Series:
    """The network each trial trained, seed left out: its ``config_hash`` without the ``-seed<N>`` a
    replicated space appends (else the run id), so that repeat seeds of one network collapse."""
    if not len(trials):
        return trials["run_id"]
    hashes = trials[schema.TAG_CONFIG_HASH].fillna(trials["run_id"]).astype(str)
    return hashes.str.split(schema.SEED_KEY_SEPARATOR, n=1).str[0]


def read_config_artifact(tracking_uri: str, run_id: str) -> dict[str, Any]:
    """The trial's ``config.yaml`` as a mapping with a ``model`` section, or a one-line ConfigError."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="resnetx-export-") as tmp:
        try:
            local = retry(lambda: client.download_artifacts(run_id, schema.CONFIG_ARTIFACT, tmp))
            text = Path(local).read_text(encoding="utf-8")
        except MlflowException as exc:  # only "not there" is a missing config; a 5xx or an auth error stays one
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError("run", run_id, f"has no readable {schema.CONFIG_ARTIFACT} artifact") from None
        except (OSError, UnicodeDecodeError):
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
        "tracking_uri": schema.shown_uri(sweep.tracking_uri),
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


def local_folder(uri: str) -> Path | None:
    """Tune's storage as a local folder (a path or ``file://``), or None for remote storage (s3://...)."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None if "://" in uri else Path(uri)


def find_checkpoint(tune_path: str, trial_id: str) -> Path:
    """The ``checkpoint.pt`` of the trial's newest ``checkpoint_NNNNNN`` under Tune's experiment folder.

    Tune names a trial's folder ``<trainable>_<trial id>_<index>_<params>...``: the id is
    matched as a whole ``_``-separated part, so trial ``ab_00001`` never takes ``ab_000011``'s
    folder. ``CheckpointConfig(num_to_keep=1)`` leaves one checkpoint; should several remain,
    the highest number is the last one written. Raises :class:`WeightsUnavailable`.
    """
    root = local_folder(tune_path)
    if root is None:
        raise WeightsUnavailable(f"Tune keeps its checkpoints at {tune_path}, not a folder on this machine")
    if not root.is_dir():
        raise WeightsUnavailable(f"Tune's folder {root} is gone (checkpoints deleted?)")
    token = re.compile(rf"(?:^|_){re.escape(trial_id)}(?:_|$)")
    folders = [p for p in root.iterdir() if p.is_dir() and token.search(p.name)]
    if not folders:
        raise WeightsUnavailable(f"no folder of trial {trial_id} under {root} (deleted?)")
    found = [(int(m.group(1)), d / CHECKPOINT_FILE) for folder in folders for d in folder.iterdir()
             if (m := _CHECKPOINT_DIR.fullmatch(d.name)) and (d / CHECKPOINT_FILE).is_file()]
    if not found:
        where = ", ".join(str(f) for f in sorted(folders))
        raise WeightsUnavailable(f"its checkpoint was deleted from {where}")
    return max(found)[1]


def read_trained_weights(checkpoint: Path, model_config: Mapping[str, Any], config_hash: str | None) -> TrainedWeights:
    """The model state dict of a checkpoint, checked against the trial it is exported for.

    Loaded with ``weights_only=True`` (a checkpoint is data, never code). A checkpoint written
    for another config (``config_hash`` recorded in it differs) or whose tensors do not fit the
    trial's model is refused: exporting it would pair a config with weights it did not train.
    """
    import io

    import torch

    from resnetx import build_model

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure, incl. a refused (non-tensor) payload
        raise WeightsUnavailable(f"{checkpoint} is not a readable checkpoint ({type(exc).__name__})") from None
    model_state = state.get(CHECKPOINT_MODEL_KEY) if isinstance(state, dict) else None
    if not isinstance(model_state, dict) or not all(isinstance(v, torch.Tensor) for v in model_state.values()):
        raise WeightsUnavailable(f"{checkpoint} holds no model state dict")
    written_for = state.get("config_hash")
    config_hash = config_hash.split(schema.SEED_KEY_SEPARATOR)[0] if config_hash else config_hash  # a replicate
    if config_hash and written_for and written_for != config_hash:
        raise WeightsUnavailable(f"{checkpoint} was written for config {written_for}, the trial is {config_hash}")
    expected = build_model(dict(model_config), device="meta").state_dict()
    if set(expected) != set(model_state) or any(tuple(expected[k].shape) != tuple(model_state[k].shape)
                                                for k in expected):
        raise WeightsUnavailable(f"{checkpoint} holds weights of another network than the trial's model")
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, buffer)
    data = buffer.getvalue()
    history = state.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    epoch = state.get("epoch")
    return TrainedWeights(data=data, sha256=hashlib.sha256(data).hexdigest(), checkpoint=checkpoint,
                          epoch=int(epoch) if isinstance(epoch, int) else None,
                          val_acc=float(last["val_acc"]) if isinstance(last.get("val_acc"), float) else None)


def trial_weights(sweep: SweepRuns, row: pd.Series, model_config: Mapping[str, Any]) -> TrainedWeights:
    """A chosen trial's trained weights from the checkpoint Tune kept, or :class:`WeightsUnavailable`."""
    tune_path = sweep.parent.tags.get(TAG_TUNE_PATH) if sweep.parent is not None else None
    if not tune_path:
        kind = "a `resnetx train` run" if sweep.parent is None else "a sweep without a tune_path tag"
        raise WeightsUnavailable(f"it is {kind}: no Tune checkpoint to take weights from")
    trial_id = _plain(row.get(schema.TAG_TRIAL_ID))
    if not trial_id:
        raise WeightsUnavailable("its run has no trial_id tag")
    checkpoint = find_checkpoint(tune_path, str(trial_id))
    return read_trained_weights(checkpoint, model_config, _plain(row.get(schema.TAG_CONFIG_HASH)))


def weights_provenance(weights: TrainedWeights, file: str) -> dict[str, Any]:
    """``provenance.weights``: enough to find the file, verify it and say which epoch it is."""
    return {"file": file, "sha256": weights.sha256, "format": WEIGHTS_FORMAT, "epoch": weights.epoch,
            "val_acc": weights.val_acc, "checkpoint": str(weights.checkpoint)}


def _stale_note(weights: TrainedWeights, prov: Mapping[str, Any]) -> str | None:
    """One line when the checkpoint is older than the trial's last logged epoch.

    With ``train.checkpoint_every > 1`` a trial stopped early (ASHA, a time limit) may end
    between checkpoints: its weights are then those of an earlier epoch and do not reproduce
    the logged ``val_acc``. They are still exported (they are the trial's latest), but not silently.
    """
    logged = prov["metrics"].get("val_acc")
    if weights.val_acc is None or logged is None or abs(weights.val_acc - logged) <= 1e-9:
        return None
    return (f"weights of run {prov['mlflow_run_name'] or prov['mlflow_run_id']} are from epoch {weights.epoch} "
            f"(val_acc {weights.val_acc:.4f}), not its last logged epoch (val_acc {logged:.4f})")


EXPORT_HEADER = "# ResNetX config exported from MLflow run"  # the first line of every exported YAML


def earlier_export(folder: Path) -> list[Path]:
    """The files an earlier export left in ``folder``: YAMLs that start with :data:`EXPORT_HEADER`, and
    their weights. A user's own files there are never among them."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.yaml")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            if not handle.readline().startswith(EXPORT_HEADER):
                continue
        found.append(path)
        if path.with_suffix(WEIGHTS_SUFFIX).is_file():
            found.append(path.with_suffix(WEIGHTS_SUFFIX))
    return found


def write_all_or_nothing(files: Mapping[Path, str | bytes], replaces: Sequence[Path] = ()) -> None:
    """Put the whole set ``files`` in place of the set ``replaces``, or change nothing.

    Every file is written to a temp name first; the renames into place are undone if one fails
    (a file that existed is restored from a hard-linked backup), and the old set's files that the
    new one does not overwrite are deleted only once every rename succeeded. So a failed export
    leaves the earlier export as it was, and a successful one leaves no stale file of it.
    """
    temps: list[tuple[str, Path]] = []
    backups: dict[Path, str] = {}
    placed: list[Path] = []
    try:
        for path, content in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        for tmp, path in temps:
            if path.exists():
                backups[path] = f"{tmp}.old"
                os.link(path, backups[path])
        try:
            for tmp, path in temps:
                os.replace(tmp, path)
                placed.append(path)
        except BaseException:
            for path in placed:  # undo: the earlier file back, or none
                if path in backups:
                    os.replace(backups.pop(path), path)
                else:
                    path.unlink(missing_ok=True)
            raise
        for path in replaces:
            if path not in files:
                path.unlink(missing_ok=True)
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for backup in backups.values():
            Path(backup).unlink(missing_ok=True)


def export_configs(tracking_uri: str, experiment: str, out_dir: str | Path, selection: Selection,
                   sweep_run_id: str | None = None, objectives: str | Sequence[Objective] | None = None,
                   validate: Callable[[dict[str, Any]], None] | None = None, with_weights: bool = False,
                   sweep: SweepRuns | None = None) -> list[Exported]:
    """Write one YAML per chosen trial to ``out_dir``; returns what was written, best first.

    ``validate`` (e.g. building ``sweep.experiment.ExperimentConfig``) runs on every config
    before anything is written; the model section is always checked. ``with_weights`` adds
    each trial's trained weights (see the module docstring); a trial whose checkpoint is gone
    is exported without them, with a one-line ``weights_note``. ``sweep`` is the sweep already
    read by the caller (so that it can say which one it took); otherwise it is read here.
    Raises ConfigError when nothing matches the selection.
    """
    if sweep is None:
        sweep = read_sweep_runs(tracking_uri, experiment, sweep_run_id)
    if objectives is None:
        objectives = sweep.objectives_tag or DEFAULT_OBJECTIVES
    chosen_objectives = parse_objectives(objectives) if isinstance(objectives, str) else list(objectives)
    trials = check_objectives(sweep.trials, chosen_objectives, sweep.metric_columns)
    ranked, _ = rank_trials(trials, chosen_objectives)
    confirmed = None
    parent_tags = sweep.parent.tags if sweep.parent is not None else None
    if selection.front and confirm.is_confirm_stage(parent_tags):  # the confirmed front, one best seed each
        confirmed = confirm.summarise(ranked, chosen_objectives)
        chosen = confirm.best_seed_rows(ranked, confirmed)
    else:
        chosen = select(ranked, selection, chosen_objectives)
    if chosen.empty:
        raise ConfigError("selection", selection.describe(), "matches no finished trial")
    out = Path(out_dir)
    configs = []
    for _, row in chosen.iterrows():  # every config is valid before any weights are read or files written
        config = read_config_artifact(tracking_uri, row["run_id"])
        config.pop(PROVENANCE_KEY, None)
        try:
            check_model(config)
            if validate is not None:
                validate(config)
        except ConfigError as exc:
            raise ConfigError(f"run {row['run_id']} {exc.field}", exc.value, exc.allowed) from None
        configs.append((row, config))
    files: dict[Path, str | bytes] = {}
    results = []
    for index, (row, config) in enumerate(configs, start=1):
        prov = provenance(row, sweep, selection, chosen_objectives)
        if confirmed is not None:
            prov["confirmed"] = confirm.provenance_of(confirmed, row[schema.TAG_MODEL_HASH],
                                                      (parent_tags or {}).get(schema.TAG_CONFIRM_OF))
            prov["selection"] = "confirmed pareto front (best seed of each network)"
        path = out / file_name(index, row)
        weights_path, note = None, None
        if with_weights:
            try:
                weights = trial_weights(sweep, row, config["model"])
            except WeightsUnavailable as exc:
                note = f"no weights for run {prov['mlflow_run_name'] or row['run_id']}: {exc}; exported its config only"
            else:
                weights_path = path.with_suffix(WEIGHTS_SUFFIX)
                files[weights_path] = weights.data
                prov[WEIGHTS_KEY] = weights_provenance(weights, weights_path.name)
                note = _stale_note(weights, prov)
        document = {**config, PROVENANCE_KEY: prov}
        header = (f"{EXPORT_HEADER} {row['run_id']} ({selection.describe()}).\n"
                  "# `resnetx show FILE` rebuilds the model; `resnetx train FILE` retrains it.\n")
        if weights_path is not None:
            header += (f"# Trained weights: {weights_path.name} (`resnetx.build_model(FILE, "
                       f"weights='{weights_path.name}')`).\n")
        files[path] = header + yaml.safe_dump(document, sort_keys=False)
        results.append(Exported(path=path, run_id=row["run_id"], run_name=str(prov["mlflow_run_name"] or ""),
                                config_hash=prov["config_hash"], metrics=prov["metrics"],
                                weights=weights_path, weights_note=note))
    out.mkdir(parents=True, exist_ok=True)
    write_all_or_nothing(files, replaces=earlier_export(out))
    return results
