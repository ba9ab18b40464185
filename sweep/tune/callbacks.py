"""Tune callback that mirrors every trial into one nested MLflow child run, written by the driver.

Why on the driver: one writer per store (SQLite takes one writer at a time), trial nodes of a
cluster need no access to the store, and the trial-to-run map lives in MLflow itself (tag
``trial_id`` under the sweep's parent run), so a restored sweep re-attaches to the runs it
already has instead of opening duplicates. Only our metrics are logged, never Ray's keys.

The writes go through one background thread (``sweep.tracking.writer``): Tune's loop only queues
them, so trials do not wait on the store's round trips. A driver killed with writes still queued
leaves gaps that the resumed sweep repairs from what Tune saved: epochs missing from a run are
read back from the trial's checkpoint (which holds every epoch's metrics), and a trial that had
ended while its run's close was still queued is closed from its saved last result.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from reports import schema
from resnetx.errors import ConfigError
from sweep.config.experiment import ExperimentConfig
from sweep.config.overrides import flatten
from sweep.search.statuses import TERMINAL_RUN_STATUS, ran_to_the_end, trial_epochs, trial_status
from sweep.tracking.store import RunLogger, open_config_run, with_retry
from sweep.tracking.writer import BackgroundWriter, QueuedRunLogger
from sweep.tune.interrupts import interrupted, watch_sigint

FINAL_KEYS = (*schema.FINAL_METRICS, *schema.LATENCY_METHOD_METRICS)


class MlflowTrialCallback(Callback):
    """One MLflow child run per Tune trial, nested under the sweep's parent run."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: dict[str, str]) -> None:
        self.tracking_uri, self.experiment_id, self.parent_run_id = tracking_uri, experiment_id, parent_run_id
        self.tags = tags
        self._reset()

    def _reset(self) -> None:
        self._loggers: dict[str, QueuedRunLogger] = {}
        self._logged_steps: dict[str, int] = {}
        self._known: dict[str, tuple[str, str]] | None = None  # trial id or config hash -> (run id, status)
        self._ended: set[str] = set()  # trials whose run this driver has closed
        self._params_logged: set[str] = set()  # trials whose data_path param is logged
        self._nodes: dict[str, str] = {}  # trial -> the node id last tagged on its run
        self._writer: BackgroundWriter | None = None
        self._repaired = False  # runs left open by a killed driver looked at (first step)
        self._reattached: set[str] = set()  # trials whose run an earlier driver opened

    def __getstate__(self) -> dict:
        """Tune pickles callbacks with the Tuner: keep settings, drop clients, threads and caches."""
        return {"tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "parent_run_id": self.parent_run_id, "tags": self.tags}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    @property
    def writer(self) -> BackgroundWriter:
        if self._writer is None:
            self._writer = BackgroundWriter()
        return self._writer

    # -- run bookkeeping ------------------------------------------------------------------
    def _existing_runs(self) -> dict[str, tuple[str, str]]:
        """Child runs of this sweep, by trial id and by config hash (read from MLflow once)."""
        if self._known is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(self.tracking_uri)
            query = f"tags.`{schema.TAG_PARENT}` = '{self.parent_run_id}'"
            runs = with_retry(lambda: client.search_runs([self.experiment_id], filter_string=query,
                                                         max_results=50000))
            self._known = {}
            for run in sorted(runs, key=lambda r: r.info.start_time or 0):
                entry = (run.info.run_id, run.info.status)
                if run.data.tags.get(schema.TAG_CONFIG_HASH):
                    self._known[f"hash:{run.data.tags[schema.TAG_CONFIG_HASH]}"] = entry
                if schema.TAG_TRIAL_ID in run.data.tags:
                    self._known[run.data.tags[schema.TAG_TRIAL_ID]] = entry
        return self._known

    def _find_run(self, trial: Trial) -> tuple[str, str] | None:
        """The run of this trial: by trial id, else by config hash.

        The config hash (the searcher's trial key, unique within a sweep) finds the run of a
        trial that a killed driver started after its last saved state: the restored searcher
        proposes it again under a new trial id, and it must continue that run, not open a second.
        """
        known = self._existing_runs()
        found = known.get(trial.trial_id)
        if found is None and trial.config.get("config_hash"):
            found = known.get(f"hash:{trial.config['config_hash']}")
        return found

    def _attach(self, trial: Trial) -> None:
        """Open or re-attach the trial's run when Tune starts or restores it.

        A run that already ended FINISHED is left alone: Tune re-schedules a trial that finished
        after the last state it saved before a driver was killed; the trial resumes from its
        final checkpoint with nothing left to train, and its run must not be reopened or rewritten.
        """
        if trial.trial_id in self._loggers or trial.trial_id in self._ended:
            return
        found = self._find_run(trial)
        if found is not None and found[1] == "FINISHED":
            self._ended.add(trial.trial_id)
            return
        self._logger(trial)

    def _logger(self, trial: Trial) -> QueuedRunLogger:
        """The trial's run: re-attached now (a resumed sweep reads its last step) or opened by the writer.

        Runs this session opens are not entered in the map read from MLflow: the trial id (in
        ``_loggers``) finds them for the rest of the session, and no other trial of a session
        has the same config hash (the searcher proposes each network once).
        """
        if trial.trial_id in self._loggers:
            return self._loggers[trial.trial_id]
        found = self._find_run(trial)
        if found is not None:
            attached = RunLogger.attach(self.tracking_uri, found[0])
            self._logged_steps[trial.trial_id] = _last_step(attached)
            self._reattached.add(trial.trial_id)
            logger = QueuedRunLogger.wrap(self.writer, attached)
            logger.set_tags({schema.TAG_TRIAL_ID: trial.trial_id})
        else:
            logger = QueuedRunLogger(self.writer, lambda: self._open_run(trial))
        self._loggers[trial.trial_id] = logger
        return logger

    def _open_run(self, trial: Trial) -> RunLogger:
        experiment = trial.config.get("experiment", {})
        cfg, invalid = resolve_trial_config(experiment)
        tags = {**self.tags, schema.TAG_TRIAL_ID: trial.trial_id}
        name, config_hash = f"trial-{trial.trial_id}", trial.config.get("config_hash", "")
        if cfg is not None:
            return open_config_run(self.tracking_uri, self.experiment_id, cfg, name=name, role=schema.ROLE_TRIAL,
                                   tags=tags, config_hash=config_hash, parent_run_id=self.parent_run_id)
        # params say what was asked; no config.yaml, so nothing can export it
        tags.update({schema.TAG_ROLE: schema.ROLE_TRIAL, schema.TAG_CONFIG_HASH: config_hash, schema.TAG_MODEL_HASH: "",
                     schema.TAG_STATUS: schema.STATUS_RUNNING, "error": f"invalid config: {invalid}",
                     schema.TAG_DATASET: experiment.get("data", {}).get("name", "")})
        logger = RunLogger.start(self.tracking_uri, self.experiment_id, name=name, tags=tags,
                                 parent_run_id=self.parent_run_id)
        logger.log_params(flatten(experiment))
        return logger

    # -- Tune hooks -----------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        watch_sigint()

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if not self._repaired:
            self._repaired = True
            self._close_left_open(trials)

    def _close_left_open(self, trials: list[Trial]) -> None:
        """Close the runs of trials that had ended when a killed driver still had their writes queued.

        Tune's saved state says such a trial ended (it is not run again), while its run is still
        RUNNING, or was never created. Its epochs come from its checkpoint, its finals from the
        last result Tune saved. A run stays RUNNING only while its trial may still report.
        """
        for trial in trials:
            if trial.status not in (Trial.TERMINATED, Trial.ERROR) or trial.trial_id in self._loggers:
                continue
            found = self._find_run(trial)
            if found is not None and found[1] != "RUNNING":
                continue
            if trial.status == Trial.TERMINATED and not trial.last_result:
                continue  # never reported: the interrupted sweep's restore decides what it becomes
            self._finish(trial, errored=trial.status == Trial.ERROR)

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._attach(trial)

    def on_trial_restore(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._attach(trial)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        if trial.trial_id in self._ended:
            return
        self._log_epoch(trial, result)

    def _log_epoch(self, trial: Trial, result: dict, history: list[dict] | None = None) -> None:
        """Log one epoch's metrics once (a resumed trial may repeat an epoch already logged).

        Epochs between the last one logged and this one were lost with a killed driver's queue:
        they are read back from the trial's checkpoint first (``history``, when the caller has
        read it already), so each run's steps stay 1..E.
        """
        logger = self._logger(trial)
        epoch = int(result.get("epoch", 0) or 0)
        logged = self._logged_steps.get(trial.trial_id, 0)
        if epoch > logged + 1:
            for earlier in history if history is not None else checkpoint_history(trial):
                step = int(earlier.get("epoch", 0) or 0)
                if logged < step < epoch:
                    logger.log_metrics(_epoch_metrics(earlier), step=step)
        if epoch and epoch > logged:
            logger.log_metrics(_epoch_metrics(result), step=epoch)
            self._logged_steps[trial.trial_id] = epoch
        node = result.get("node_id")
        if node and self._nodes.get(trial.trial_id) != node:  # a tag write per node, not per epoch
            logger.set_tags({"node_id": node})
            self._nodes[trial.trial_id] = node
        if result.get(schema.PARAM_DATA_PATH) and trial.trial_id not in self._params_logged:
            logger.log_params({schema.PARAM_DATA_PATH: result[schema.PARAM_DATA_PATH]})
            self._params_logged.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if interrupted() and not _ran_to_the_end(trial):
            self._suspend(trial)  # Tune stops it as if it had ended; it will resume
            return
        self._finish(trial, errored=False)

    def _suspend(self, trial: Trial) -> None:
        """An interrupted trial's run is KILLED (not finished) until ``--resume`` re-attaches it."""
        if trial.trial_id in self._loggers:
            self._loggers.pop(trial.trial_id).end("KILLED")
        self._ended.add(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._finish(trial, errored=True)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Nothing stays RUNNING: ended trials are closed, unfinished ones marked KILLED (resumable)."""
        for trial in trials:
            if trial.trial_id in self._ended or trial.trial_id not in self._loggers:
                continue  # closed already, or never ran in this session (finished before a resume)
            if trial.status == Trial.ERROR or (trial.status == Trial.TERMINATED and not interrupted()):
                self._finish(trial, errored=trial.status == Trial.ERROR)
            else:
                self._suspend(trial)
        if self._writer is not None:
            self._writer.close()  # every queued write sent before fit() returns; a failure raises here
            self._writer.raise_failure()
            self._writer = None

    def _finish(self, trial: Trial, errored: bool) -> None:
        if trial.trial_id in self._ended:
            return
        last = trial.last_result or {}
        logger = self._logger(trial)
        history = None
        if trial.trial_id in self._reattached:
            history = checkpoint_history(trial)
            last = _trained_beyond(last, history)
        self._log_epoch(trial, last, history)
        status = trial_status(last, trial_epochs(trial.config), errored)
        finals = {k: _finite(last.get(k)) for k in FINAL_KEYS}
        finals[schema.EPOCHS_METRIC] = _finite(last.get("epoch"))
        logger.log_metrics(finals, step=int(last.get("epoch", 0) or 0))
        tags = {schema.TAG_STATUS: status}
        if "status" not in last and not errored:
            tags["error"] = "ended before its first result (stopped by the trial time limit or the scheduler)"
        if last.get("error"):
            tags["error"] = str(last["error"])[:4000]
        if errored and trial.error_file:
            tags["error"] = _read_error(trial.error_file)
        logger.set_tags(tags)
        logger.end(TERMINAL_RUN_STATUS.get(status, "FAILED"))
        self._loggers.pop(trial.trial_id, None)
        self._ended.add(trial.trial_id)


def _trained_beyond(last: dict, history: list[dict]) -> dict:
    """``last`` brought up to the trial's checkpoint ``history``, when that trained further than Tune's last result.

    A trial whose final epoch was checkpointed while its driver was killed before handling
    the result restores from that checkpoint after ``--resume``, trains nothing and reports
    nothing: Tune's last result stays an epoch short. Its missing epochs are logged from
    the checkpoint's history, and its finals use that history (best_val_acc is the best of
    it; test_acc, never reported, stays absent). Only for runs an earlier driver opened.
    """
    beyond = [h for h in history if int(h.get("epoch", 0) or 0) > int(last.get("epoch", 0) or 0)]
    if not beyond:
        return last
    brought = {**{k: v for k, v in last.items() if k != "test_acc"}, **beyond[-1]}  # gaps: _log_epoch
    brought["status"] = last.get("status", schema.STATUS_RUNNING)
    best = [float(h["val_acc"]) for h in history if "val_acc" in h]
    if best:
        brought["best_val_acc"] = max(best)
    return brought


def _epoch_metrics(result: dict) -> dict[str, float | None]:
    return {k: _finite(result.get(k)) for k in schema.EPOCH_METRICS}


def checkpoint_history(trial: Trial) -> list[dict]:
    """The per-epoch metrics a trial's latest checkpoint holds (empty without a readable one).

    Our trainables save ``history`` in every checkpoint (``sweep.training.checkpoint``); the
    driver reads it only to fill epochs a killed driver's queue lost, which is rare.
    """
    from ray.train import Checkpoint
    from ray.train._internal.storage import _exists_at_fs_path

    from sweep.tune.ray_fixes import newest_checkpoint_after
    from sweep.tune.trainable import saved_history

    saved = trial.checkpoint
    if saved is None:
        return []
    try:
        readable: Any = saved
        if not _exists_at_fs_path(saved.filesystem, saved.path):  # deleted by num_to_keep (see ray_fixes)
            newer = newest_checkpoint_after(saved.filesystem, saved.path)
            if newer is None:
                return []
            readable = Checkpoint(newer[0], filesystem=saved.filesystem)
        return saved_history(readable)
    except (ConfigError, OSError):
        return []


def _ran_to_the_end(trial: Trial) -> bool:
    return ran_to_the_end(trial.last_result, trial_epochs(trial.config))


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _last_step(logger: RunLogger) -> int:
    history = with_retry(lambda: logger.client.get_metric_history(logger.run_id, "val_acc"))
    return max((m.step for m in history), default=0)


def _read_error(path: str) -> str:
    try:
        with open(path) as f:
            lines = [line for line in f.read().strip().splitlines() if line.strip()]
        return lines[-1][:4000] if lines else "unknown error"
    except OSError:
        return "unknown error"


def resolve_trial_config(experiment: dict) -> tuple[ExperimentConfig | None, ConfigError | None]:
    """The validated config with every default filled in (what actually trains), or why it is invalid.

    Only :class:`ConfigError` means "invalid": anything else is a bug and propagates, instead of
    the raw, unvalidated dict being logged and later exported as if it were the trial's config.
    """
    try:
        return ExperimentConfig(**experiment), None
    except ConfigError as exc:
        return None, exc
