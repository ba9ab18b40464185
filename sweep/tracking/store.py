"""MLflow tracking through ``MlflowClient`` (no fluent global state), safe for many writers.

Why not the fluent API or Ray's ``MLflowLoggerCallback``: trials share processes (actor reuse)
and threads, the callback logs Ray's own keys and keeps its run map in memory only (a resumed
sweep would open duplicate runs), and SQLite takes one writer at a time. Here every write is
batched, retried on ``database is locked``, and the store is created before any trial runs.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from reports.mlflow_io import retry as with_retry
from sweep.config.paths import DEFAULT_EXPERIMENT, configure_environment, resolve_tracking_uri, runs_dir, sqlite_uri

__all__ = ["DEFAULT_EXPERIMENT", "EXPERIMENT_KIND_TAG", "MODEL_TRAINING_KIND", "RunLogger", "configure_environment",
           "prepare_store", "resolve_tracking_uri", "runs_dir", "sqlite_uri", "with_retry"]

_MAX_BATCH_METRICS = 1000
_MAX_BATCH_PARAMS = 100


def _sqlite_path(tracking_uri: str) -> Path | None:
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///"))
    return None


def _is_server(tracking_uri: str) -> bool:
    """A tracking server (``http(s)://``, ``databricks``): MLflow's HTTP client retries its POSTs."""
    return _sqlite_path(tracking_uri) is None and not _is_database(tracking_uri)


def _is_database(tracking_uri: str) -> bool:
    """A database MLflow opens itself (SQLAlchemy), other than SQLite: not a tracking server."""
    return tracking_uri.split("://", 1)[0].split("+", 1)[0].lower() in ("postgresql", "mysql", "mssql")


def prepare_store(tracking_uri: str, experiment: str, artifact_root: str | Path | None = None,
                  runs_folder: str | Path | None = None) -> str:
    """Create the store (once, under a file lock) and the experiment; return its id.

    Call this on the driver before any trial starts: two processes creating a fresh SQLite
    store at once race on its tables. WAL journaling lets readers (the UI, reports) proceed
    while one trial writes. A new experiment in a database given directly (``postgresql://``)
    keeps its artifacts under ``runs_folder/artifacts`` as SQLite's do: MLflow's own default is
    ``./mlruns`` in whatever folder the command was started from. A tracking server chooses its own.
    """
    configure_environment()
    db = _sqlite_path(tracking_uri)
    if db is None:
        if artifact_root is None and runs_folder is not None and _is_database(tracking_uri):
            artifact_root = Path(runs_folder) / "artifacts" / experiment
        return _ensure_experiment(MlflowClient(tracking_uri), experiment, artifact_root)
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / ".mlflow.db.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            client = MlflowClient(tracking_uri)
            root = artifact_root or db.parent / "artifacts" / experiment
            experiment_id = _ensure_experiment(client, experiment, root)
            with sqlite3.connect(db, timeout=30) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return experiment_id
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# MLflow keeps an experiment's kind in the tag ``mlflow.experimentKind``: unset or
# ``genai_development`` is a GenAI experiment (first page: traces, sessions; no runs visible),
# ``custom_model_development`` a model-training one (first page: the runs table; DESIGN.md §5).
# MLflow 3.17.2's own UI routes by the browser's workflow switch instead (measured; the links
# `resnetx ui` prints select it, see sweep/cli/ui.py), but the tag is what the experiment *is*.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


def _ensure_experiment(client: MlflowClient, name: str, artifact_root: str | Path | None) -> str:
    """The experiment's id, created as a model-training experiment if missing (restored if deleted).

    An existing experiment without a kind gets the model-training kind (stores made before
    this tag was set); one whose kind someone chose in the UI keeps it.
    """
    found = with_retry(lambda: client.get_experiment_by_name(name))
    if found is None:
        location = None
        if artifact_root is not None:
            location = Path(artifact_root).resolve().as_uri() if "://" not in str(artifact_root) else str(artifact_root)
        try:
            return with_retry(lambda: client.create_experiment(name, artifact_location=location,
                                                               tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}))
        except Exception:  # created concurrently by someone else: use theirs
            found = with_retry(lambda: client.get_experiment_by_name(name))
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        with_retry(lambda: client.restore_experiment(found.experiment_id))
    if not found.tags.get(EXPERIMENT_KIND_TAG):
        with_retry(lambda: client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND))
    return found.experiment_id


# A tag that makes a run's creation idempotent on a tracking server: MLflow's HTTP client retries
# every request, POSTs included (urllib3 ``allowed_methods=None``, 7 retries), also when the request
# reached the server and only its answer was lost (the server killed after its commit, a read
# timeout, a proxy's 5xx). One ``create_run`` then makes two runs, and the one nobody holds stays
# RUNNING forever. Each creation carries a fresh token; the twins that share it are removed.
CREATE_TOKEN_TAG = "resnetx.create_token"


class RunLogger:
    """Buffered writer for one MLflow run. Metrics go out in batches; every write is retried."""

    def __init__(self, client: MlflowClient, run_id: str, flush_every: int = 200) -> None:
        self.client, self.run_id, self.flush_every = client, run_id, flush_every
        self._pending: list[Metric] = []

    @classmethod
    def start(cls, tracking_uri: str, experiment_id: str, name: str | None = None,
              tags: Mapping[str, str] | None = None, parent_run_id: str | None = None) -> RunLogger:
        configure_environment()
        client = MlflowClient(tracking_uri)
        all_tags = {k: str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        server = _is_server(tracking_uri)
        if server:
            all_tags[CREATE_TOKEN_TAG] = uuid.uuid4().hex
        run = with_retry(lambda: client.create_run(experiment_id, run_name=name, tags=all_tags))
        if server:
            _remove_twins(client, experiment_id, run.info.run_id, all_tags[CREATE_TOKEN_TAG])
        return cls(client, run.info.run_id)

    @classmethod
    def attach(cls, tracking_uri: str, run_id: str) -> RunLogger:
        """Re-attach to an existing run (a resumed trial keeps its one run)."""
        client = MlflowClient(tracking_uri)
        if with_retry(lambda: client.get_run(run_id)).info.status != "RUNNING":
            with_retry(lambda: client.update_run(run_id, status="RUNNING"))
        return cls(client, run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), _MAX_BATCH_PARAMS):
            chunk = items[i:i + _MAX_BATCH_PARAMS]
            with_retry(lambda c=chunk: self.client.log_batch(self.run_id, params=c))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        chunk = [RunTag(k, str(v)) for k, v in tags.items()]
        with_retry(lambda: self.client.log_batch(self.run_id, tags=chunk))

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        self._pending.extend(metric_objects(metrics, step))
        if len(self._pending) >= self.flush_every:
            self.flush()

    def log_metric_batch(self, metrics: list[Metric]) -> None:
        """Send already-made :class:`Metric` objects now (a queued writer's batch), with any pending."""
        self._pending.extend(metrics)
        self.flush()

    def flush(self) -> None:
        while self._pending:
            chunk, self._pending = self._pending[:_MAX_BATCH_METRICS], self._pending[_MAX_BATCH_METRICS:]
            with_retry(lambda c=chunk: self.client.log_batch(self.run_id, metrics=c))

    def log_text(self, text: str, artifact_file: str) -> None:
        with_retry(lambda: self.client.log_text(self.run_id, text, artifact_file))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with_retry(lambda: self.client.log_artifact(self.run_id, str(path), artifact_path))

    def end(self, status: str = "FINISHED") -> None:
        """Flush and close the run: FINISHED, FAILED or KILLED (never left RUNNING)."""
        self.flush()
        with_retry(lambda: self.client.set_terminated(self.run_id, status=status))


def metric_objects(metrics: Mapping[str, Any], step: int) -> list[Metric]:
    """MLflow metrics of the numeric values (None, booleans and non-numbers are not logged), stamped now."""
    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, int(step)) for key, value in metrics.items()
            if value is not None and not isinstance(value, bool) and isinstance(value, (int, float))]


def _remove_twins(client: MlflowClient, experiment_id: str, run_id: str, token: str) -> None:
    """Delete the runs a retried ``create_run`` made besides ``run_id`` (closed KILLED first)."""
    query = f"tags.`{CREATE_TOKEN_TAG}` = '{token}'"
    twins = with_retry(lambda: client.search_runs([experiment_id], filter_string=query, max_results=10))
    for twin in twins:
        if twin.info.run_id != run_id:
            with_retry(lambda t=twin.info.run_id: client.set_terminated(t, status="KILLED"))
            with_retry(lambda t=twin.info.run_id: client.delete_run(t))


def open_config_run(tracking_uri: str, experiment_id: str, cfg: Any, *, name: str, role: str,
                    tags: Mapping[str, str] | None = None, config_hash: str | None = None,
                    parent_run_id: str | None = None) -> RunLogger:
    """Start the run of one trained config, ``resnetx train``'s and a sweep trial's alike (one rule).

    Tags: ``role``, the dataset, the config and model hashes, status running (then ``tags``, e.g.
    the sweep's and the trial id); params: the flattened validated config; artifact: its
    ``config.yaml``, from which export and ``resnetx train`` rebuild it. ``config_hash``: the
    trial's key when the caller has one (a sweep keys before a pretrain file is resolved).
    """
    from reports import schema

    all_tags = {schema.TAG_ROLE: role, schema.TAG_DATASET: cfg.data.name,
                schema.TAG_CONFIG_HASH: config_hash if config_hash is not None else cfg.config_hash(),
                schema.TAG_MODEL_HASH: cfg.model.canonical_hash(), schema.TAG_STATUS: schema.STATUS_RUNNING,
                **(tags or {})}
    logger = RunLogger.start(tracking_uri, experiment_id, name=name, tags=all_tags, parent_run_id=parent_run_id)
    logger.log_params(cfg.flat())
    logger.log_text(cfg.to_yaml(), schema.CONFIG_ARTIFACT)
    return logger


def _param_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "null" if value is None else str(value)
