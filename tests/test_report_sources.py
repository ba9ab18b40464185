"""One source of truth on the reports side: epochs trained, and the default experiment name.

The store is a real sqlite MLflow store; the client whose requests are counted is a real
``MlflowClient`` subclass (no mocks of MLflow).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from reports import schema
from sweep.config.paths import sqlite_uri
from sweep.tracking.store import RunLogger, prepare_store

# name -> (steps at which val_acc is logged, the final `epochs` metric or None: a run from before it was
# logged). Run "a" logs epochs=5 beside 2 val_acc steps on purpose: the two sources disagree, so the
# test sees which one was read.
RUNS: dict[str, tuple[tuple[int, ...], int | None]] = {
    "a": ((1, 2), 5), "b": ((1, 2, 3), 3), "c": ((1, 2), None), "d": ((), None),
}
EXPECTED_EPOCHS = {"a": 5, "b": 3, "c": 2, "d": 0}  # metric where logged, else the last val_acc step, else 0


def _log_run(uri: str, experiment_id: str, parent_id: str, name: str, steps: tuple[int, ...],
             epochs: int | None) -> str:
    status = schema.STATUS_FINISHED if steps else schema.STATUS_FAILED
    run = RunLogger.start(uri, experiment_id, name=name, parent_run_id=parent_id, tags={
        schema.TAG_ROLE: schema.ROLE_TRIAL, schema.TAG_TRIAL_ID: f"trial_{name}", schema.TAG_STATUS: status})
    run.log_params({"model.fold": 1})
    for step in steps:
        run.log_metrics({"val_acc": 0.5 + step / 10}, step=step)
    run.log_metrics({"params": 1000.0, **({schema.EPOCHS_METRIC: epochs} if epochs is not None else {})})
    run.end()
    return run.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("epochs") / "runs"
    folder.mkdir(parents=True)
    uri = sqlite_uri(folder)
    experiment_id = prepare_store(uri, schema.DEFAULT_EXPERIMENT)
    parent = RunLogger.start(uri, experiment_id, name="sweep", tags={
        schema.TAG_ROLE: schema.ROLE_SWEEP, schema.TAG_OBJECTIVES: "val_acc:max,params:min"})
    ids = {name: _log_run(uri, experiment_id, parent.run_id, name, *spec) for name, spec in RUNS.items()}
    parent.end()
    return {"folder": folder, "uri": uri, "ids": ids}


def _counting_client(uri: str):
    from mlflow.tracking import MlflowClient

    class CountingClient(MlflowClient):
        """A real client that records every metric-history request it sends."""

        def __init__(self, tracking_uri: str) -> None:
            super().__init__(tracking_uri)
            self.history_requests: list[tuple[str, str]] = []

        def get_metric_history(self, run_id: str, key: str):
            self.history_requests.append((run_id, key))
            return super().get_metric_history(run_id, key)

    return CountingClient(uri)


def test_runs_with_the_epochs_metric_need_no_history_request(store):
    from reports.history import epochs_trained
    from reports.runs import read_sweep_runs

    trials = read_sweep_runs(store["uri"]).trials
    client = _counting_client(store["uri"])
    got = dict(zip(trials["run_name"], epochs_trained(trials, client)))
    assert got == EXPECTED_EPOCHS
    # only c and d lack the metric: one val_acc history each, none for a and b
    assert sorted(client.history_requests) == sorted([(store["ids"]["c"], "val_acc"), (store["ids"]["d"], "val_acc")])


def test_the_notebook_frame_reads_epochs_as_the_report_does(store):
    """reports.load_sweep's `epochs` column prefers the logged metric (it used to read every history)."""
    from reports import load_sweep

    frame = load_sweep(store["folder"])
    assert dict(zip(frame["run_id"].map({v: k for k, v in store["ids"].items()}), frame["epochs"])) == EXPECTED_EPOCHS


def test_at_epoch_uses_the_same_epochs(store):
    """--at-epoch's "longest trained" comes from the same rule: run a's logged 5 epochs, not its 2 steps."""
    from reports.history import at_common_epoch
    from reports.pareto import parse_objectives
    from reports.runs import read_sweep_runs
    from resnetx.errors import ConfigError

    with pytest.raises(ConfigError, match="the longest trained 5 epoch"):
        at_common_epoch(read_sweep_runs(store["uri"]), parse_objectives("val_acc:max,params:min"), 6)


def test_the_default_experiment_is_named_once():
    """Every default experiment name is reports.schema.DEFAULT_EXPERIMENT ("resnetx", what sweeps log to)."""
    from reports.frames import load_sweep as frame_sweep
    from reports.report import build_report
    from reports.runs import read_sweep_runs as read_sweep
    from sweep.config.paths import DEFAULT_EXPERIMENT
    from sweep.config.settings import SweepSettings

    assert schema.DEFAULT_EXPERIMENT == "resnetx"
    defaults = [inspect.signature(f).parameters["experiment"].default for f in (frame_sweep, build_report, read_sweep)]
    assert defaults == [schema.DEFAULT_EXPERIMENT] * 3
    assert DEFAULT_EXPERIMENT == SweepSettings().experiment == schema.DEFAULT_EXPERIMENT
