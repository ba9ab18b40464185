"""Errors are caught where they are meant, not by ``except Exception`` fallbacks that hide bugs.

Each of these was a broad fallback: an invalid trial config was logged (and could later be
exported) as if it were valid, and a store error when reading a sweep read as "no such run".
"""

from __future__ import annotations

import pytest

from resnetx.errors import ConfigError


def test_an_invalid_trial_config_is_reported_as_invalid_not_logged_raw():
    from sweep.tune.callbacks import resolve_trial_config

    cfg, invalid = resolve_trial_config({"model": {"fold": 0}})
    assert cfg is None and isinstance(invalid, ConfigError) and invalid.field == "model.fold"
    cfg, invalid = resolve_trial_config({"model": {}, "train": {"epochs": 1}})
    assert invalid is None and cfg.train.epochs == 1 and cfg.train.lr == 0.1  # defaults filled in


def test_a_bug_while_resolving_a_trial_config_propagates(monkeypatch):
    import sweep.tune.callbacks as callbacks

    def broken(**_: object) -> None:
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(callbacks, "ExperimentConfig", broken)
    with pytest.raises(KeyError):
        callbacks.resolve_trial_config({"model": {}})


def test_a_store_error_reading_a_sweep_is_not_no_such_run(tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from reports.runs import read_sweep_runs
    from sweep.config.paths import sqlite_uri
    from sweep.tracking.store import prepare_store

    uri = sqlite_uri(tmp_path)
    prepare_store(uri, "resnetx")
    with pytest.raises(ConfigError, match=r"^--sweep: got '0123456789abcdef0123456789abcdef'; no such run"):
        read_sweep_runs(uri, "resnetx", "0123456789abcdef0123456789abcdef")

    def unreachable(self, run_id):  # what a tracking server that went away raises
        raise MlflowException("API request to endpoint /api/2.0/mlflow/runs/get failed with exception "
                              "HTTPConnectionPool: Max retries exceeded", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(MlflowClient, "get_run", unreachable)
    with pytest.raises(MlflowException, match="Max retries exceeded"):
        read_sweep_runs(uri, "resnetx", "0123456789abcdef0123456789abcdef")
