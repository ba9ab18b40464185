"""Metrics at one epoch, for ranking finished and early-stopped trials at a common budget.

A trial ASHA stopped after one epoch and a trial trained for ten are not comparable at their
ends; at epoch 1 they are. MLflow keeps every epoch's value (step = epoch), so the report can
read each trial's metric at the chosen epoch and rank every trial that reached it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reports import schema
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import Objective
from reports.runs import SweepRuns
from resnetx.errors import ConfigError

AT_END_ONLY = ("test_acc", "train_time_s")  # not defined at an intermediate epoch


def epochs_trained(sweep: SweepRuns) -> pd.Series:
    """Epochs each trial trained (the ``epochs`` metric; older runs: the last step of val_acc)."""
    if schema.EPOCHS_METRIC in sweep.trials.columns and sweep.trials[schema.EPOCHS_METRIC].notna().all():
        return sweep.trials[schema.EPOCHS_METRIC]
    client = mlflow_client(sweep.tracking_uri)
    steps = [max((m.step for m in retry(lambda r=run_id: client.get_metric_history(r, "val_acc"))), default=0)
             for run_id in sweep.trials["run_id"]]
    return pd.Series(steps, index=sweep.trials.index, dtype=float)


def at_common_epoch(sweep: SweepRuns, objectives: Sequence[Objective], epoch: int | str) -> tuple[pd.DataFrame, int]:
    """The trials with each per-epoch objective replaced by its value at ``epoch`` (NaN: not reached).

    ``epoch="common"``: the last epoch every completed (finished or stopped) trial reached.
    Objectives that are not per-epoch metrics (params, FLOPs) are the same at every epoch.
    """
    trials = sweep.trials.copy()
    done = trials[schema.TAG_STATUS].isin(schema.COMPLETED_STATUSES)
    trained = epochs_trained(sweep)
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
    client = mlflow_client(sweep.tracking_uri)
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
