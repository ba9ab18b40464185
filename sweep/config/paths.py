"""Where a sweep keeps its files: the runs folder and the MLflow tracking URI derived from it.

Plain path and string logic (no MLflow import), so training can find ``<runs_dir>/data`` and
the CLI can print URIs without loading the tracking stack.
"""

from __future__ import annotations

import os
from pathlib import Path

from reports import schema
from resnetx.errors import ConfigError

DEFAULT_RUNS_DIR = "resnetx-runs"
DEFAULT_EXPERIMENT = schema.DEFAULT_EXPERIMENT  # named once, where reports can read it too
# Stores MLflow 3 accepts (its file store is refused unless MLFLOW_ALLOW_FILE_STORE=true).
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
# SQLAlchemy's database driver of each database URI dialect (scheme+driver) -> (module, the
# package that installs it): a missing one is named before Ray starts, not deep in a trial. A bare
# scheme's driver is SQLAlchemy's default, asked of SQLAlchemy (it changes: `postgresql://` is
# psycopg2 up to SQLAlchemy 2.0, psycopg 3 from 2.1).
DATABASE_DRIVERS = {
    "postgresql+psycopg2": ("psycopg2", "psycopg2-binary"), "postgresql+psycopg": ("psycopg", "psycopg[binary]"),
    "postgresql+pg8000": ("pg8000", "pg8000"), "mysql+mysqldb": ("MySQLdb", "mysqlclient"),
    "mysql+pymysql": ("pymysql", "pymysql"), "mssql+pyodbc": ("pyodbc", "pyodbc"),
}


def runs_dir(path: str | Path | None = None) -> Path:
    """The folder holding ``mlflow.db``, ``artifacts/``, ``ray/``, ``reports/``, ``data/``."""
    chosen = path or os.environ.get("RESNETX_RUNS_DIR") or DEFAULT_RUNS_DIR
    return Path(chosen).expanduser().resolve()


def sqlite_uri(folder: str | Path) -> str:
    return f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


def resolve_tracking_uri(tracking_uri: str | None, folder: str | Path | None) -> str:
    """An explicit ``--tracking-uri`` wins; otherwise the sqlite store under the runs folder.

    A URI without a store scheme (``mlruns``, ``./runs``, a typo) would reach MLflow as its
    deprecated file store and fail deep inside it; it is refused here in one line.
    """
    if tracking_uri is None or tracking_uri == "":
        return sqlite_uri(runs_dir(folder))
    scheme = tracking_uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in tracking_uri else tracking_uri
    allowed = (*TRACKING_SCHEMES, "file") if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() == "true" \
        else TRACKING_SCHEMES
    if scheme not in allowed:
        raise ConfigError("--tracking-uri", tracking_uri, "must be an MLflow store URI: sqlite:///PATH/mlflow.db, "
                          "http(s)://HOST:PORT (a tracking server) or a database URI (postgresql://...)")
    check_database_driver(tracking_uri)
    return tracking_uri


def check_database_driver(tracking_uri: str) -> None:
    """A database URI whose driver is not installed: one line naming the package to install."""
    import importlib.util

    driver = DATABASE_DRIVERS.get(_dialect(tracking_uri.split("://", 1)[0].lower()))
    if driver is not None and importlib.util.find_spec(driver[0]) is None:
        raise ConfigError("--tracking-uri", schema.shown_uri(tracking_uri), f"needs the database driver {driver[0]}: "
                          f"pip install {driver[1]} (into the sweep's venv)")


def configure_environment() -> None:
    """MLflow settings every writer and reader of our stores wants; called before a client is made.

    Explicit (not done at import): telemetry off, and no progress bar on stderr for artifact
    downloads (export reads config.yaml artifacts), so a command's stderr stays one line on errors.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _dialect(scheme: str) -> str:
    """``scheme+driver`` as SQLAlchemy will load it: a bare scheme gets SQLAlchemy's default driver."""
    if "+" in scheme or scheme not in ("postgresql", "mysql", "mssql"):
        return scheme
    from sqlalchemy.engine.url import make_url  # only for database URIs: the dialect class, not its driver

    return f"{scheme}+{make_url(f'{scheme}://').get_dialect().driver}"
