"""Metrics at one epoch, for ranking finished and early-stopped trials at a common budget.

A trial ASHA stopped after one epoch and a trial trained for ten are not comparable at their
ends; at epoch 1 they are. MLflow keeps every epoch's value (step = epoch), so the report can
read each trial's metric at the chosen epoch and rank every trial that reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports import schema
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import Objective
from reports.runs import SweepRuns
from resnetx.errors import ConfigError

AT_END_ONLY = ("test_acc", "train_time_s")  # not defined at an intermediate epoch


def epochs_trained(trials: pd.DataFrame, client: Any) -> pd.Series:
    """Epochs each trial trained: its ``epochs`` metric, else the last step of its val_acc, else 0.

    The one rule for the report (``--at-epoch``) and the notebook frame (``reports.load_sweep``).
    The metric is what the trial itself says it trained (where a stopped trial stopped); the
    val_acc history is read only for the runs that lack it (older runs, trials that failed before
    the end), one request each: against a remote server every request is a round trip.
    ``client`` is an ``MlflowClient``. The requested ``train.epochs`` says what was asked, not
    how far a trial got.
    """
    logged = (pd.to_numeric(trials[schema.EPOCHS_METRIC], errors="coerce") if schema.EPOCHS_METRIC in trials.columns
              else pd.Series(np.nan, index=trials.index))
    epochs = [int(value) if np.isfinite(value) else last_step(client, run_id, "val_acc")
              for run_id, value in zip(trials["run_id"], logged.to_numpy(dtype=float))]
    return pd.Series(epochs, index=trials.index, dtype=int, name=schema.EPOCHS_METRIC)


def last_step(client: Any, run_id: str, metric: str) -> int:
    """The last step (epoch) at which a run logged ``metric``; 0 when it never did."""
    return max((int(m.step) for m in retry(lambda: client.get_metric_history(run_id, metric))), default=0)


def at_common_epoch(sweep: SweepRuns, objectives: Sequence[Objective], epoch: int | str) -> tuple[pd.DataFrame, int]:
    """The trials with each per-epoch objective replaced by its value at ``epoch`` (NaN: not reached).

    ``epoch="common"``: the last epoch every completed (finished or stopped) trial reached.
    Objectives that are not per-epoch metrics (params, FLOPs) are the same at every epoch.
    """
    trials = sweep.trials.copy()
    done = trials[schema.TAG_STATUS].isin(schema.COMPLETED_STATUSES)
    client = mlflow_client(sweep.tracking_uri)
    trained = epochs_trained(trials, client)
    if epoch == "common":
        if not done.any():
            raise ConfigError("--at-epoch", epoch, "no trial finished or stopped: there is no common epoch")
        chosen = int(trained[done].min())
    else:
        try:
            chosen = int(epoch)
        except (TypeError, ValueError):
            raise ConfigError("--at-epoch", epoch, "must be an epoch number (>= 1) or common") from None
    if chosen < 1:
        raise ConfigError("--at-epoch", epoch, "must be >= 1")
    longest = int(trained.max()) if len(trained) and pd.notna(trained.max()) else 0
    if chosen > longest:  # no trial reached it: the ranking would be empty, not a report
        raise ConfigError("--at-epoch", epoch, f"no trial reached it; the longest trained {longest} epoch(s)")
    for objective in objectives:
        if objective.name in AT_END_ONLY:
            raise ConfigError("--at-epoch", epoch, f"objective {objective.name} is known only at the end of a trial; "
                              "use per-epoch metrics (val_acc, ...) and sizes (params, flops, latency_ms)")
        if objective.name == "best_val_acc":  # the best validation accuracy up to that epoch
            trials[objective.name] = [
                max((m.value for m in retry(lambda r=run_id: client.get_metric_history(r, "val_acc"))
                     if m.step <= chosen), default=np.nan)
                for run_id in trials["run_id"]]
            continue
        if objective.name not in schema.EPOCH_METRICS:
            continue
        values = []
        for run_id in trials["run_id"]:
            history = retry(lambda r=run_id, n=objective.name: client.get_metric_history(r, n))
            at = [m.value for m in history if m.step == chosen]
            values.append(at[-1] if at else np.nan)
        trials[objective.name] = values
    trials[schema.EPOCHS_METRIC] = trained
    return trials, chosen
