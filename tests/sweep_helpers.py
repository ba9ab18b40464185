"""Helpers shared by the sweep tests: fast trial overrides and reading MLflow back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from reports import schema
from sweep.config.paths import sqlite_uri

# Small, real trainings: 2 epochs on 400 digits images.
FAST = ["--set", "train.epochs=2", "--set", "data.subset=400"]


def client_for(runs_dir: Path | None = None, tracking_uri: str | None = None) -> MlflowClient:
    return MlflowClient(tracking_uri or sqlite_uri(runs_dir))


def all_runs(client: MlflowClient, experiment: str = "resnetx") -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], max_results=5000)


def split_runs(runs: list) -> tuple[list, list]:
    parents = [r for r in runs if r.data.tags.get(schema.TAG_ROLE) == schema.ROLE_SWEEP]
    children = [r for r in runs if r.data.tags.get(schema.TAG_ROLE) == schema.ROLE_TRIAL]
    return parents, children


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
