"""Sweeps into PostgreSQL, the team's shared store (docs/tracking-database.md), with real Ray and MLflow.

A throwaway PostgreSQL server (tests/support/postgres.py, Debian's package) holds one database
per store: one a sweep writes straight into (``--tracking-uri postgresql://...``), one behind a
real ``mlflow server --backend-store-uri postgresql://...`` that one sweep and then two
concurrent ``resnetx sweep`` processes write through. Every sweep is the same tiny one
(2 trials, 2 epochs, 400 digits images) and must leave what it leaves in SQLite
(tests/test_sweep.py): one parent run, one run per trial, each with its per-epoch history, and
no run left RUNNING, checked through MLflow and in the database's own tables.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from reports import schema
from sweep.cli import main
from sweep.config.paths import sqlite_uri
from tests.sweep_helpers import FAST, all_runs, client_for, split_runs

if TYPE_CHECKING:  # imported by pytest as the plugin below (importing it here first loses its assert rewriting)
    from tests.support.postgres import PostgresServer

pytest_plugins = ["tests.support.postgres"]  # the session's `postgres` fixture
pytestmark = pytest.mark.slow

PASSWORD = "not-a-secret-42"  # in the direct sweep's URI (trust auth ignores it): must be written nowhere
TRIALS = 2
SMALL = ["--num-samples", str(TRIALS), "--search", "random", "--no-report", *FAST]
EPOCHS = [1, 2]  # FAST trains 2 epochs: every trial's val_acc history has these steps


@dataclass
class Sweep:
    """A finished sweep's store, as the tests below read it back."""

    uri: str
    runs_dir: Path
    output: str  # what the sweep printed
    experiment: str = schema.DEFAULT_EXPERIMENT


@dataclass
class Served:
    """A running ``mlflow server``: its URL and the folder it stores uploaded artifacts in."""

    url: str
    artifacts: Path


def check_sweeps(uri: str, experiment: str, sweeps: int) -> list:
    """What every sweep of ``TRIALS`` trials leaves in any store (the assertions of test_sweep on SQLite).

    One parent per sweep, ``TRIALS`` runs under each, one MLflow run per Tune trial, every run
    FINISHED, each trial with its config artifact and its val_acc/train_loss at every epoch.
    """
    client = client_for(tracking_uri=uri)
    runs = all_runs(client, experiment)
    parents, children = split_runs(runs)
    assert len(runs) == sweeps * (TRIALS + 1), [r.data.tags.get(schema.TAG_ROLE) for r in runs]
    assert len(parents) == sweeps and all(p.info.status == "FINISHED" for p in parents)
    assert {r.info.status for r in runs} == {"FINISHED"}, Counter(r.info.status for r in runs)
    per_parent = Counter(c.data.tags[schema.TAG_PARENT] for c in children)
    assert per_parent == {p.info.run_id: TRIALS for p in parents}
    assert len({(c.data.tags[schema.TAG_PARENT], c.data.tags[schema.TAG_TRIAL_ID]) for c in children}) == len(children)
    for child in children:
        assert child.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED, child.data.tags.get("error")
        for metric in ("val_acc", "train_loss"):
            assert sorted(m.step for m in client.get_metric_history(child.info.run_id, metric)) == EPOCHS
        config = yaml.safe_load(Path(client.download_artifacts(child.info.run_id, schema.CONFIG_ARTIFACT)).read_text())
        assert config["train"]["epochs"] == len(EPOCHS)
    return children


def store_counts(uri: str, experiment: str) -> dict[str, object]:
    """What a sweep left in a store, comparable across stores: runs by role and status, epochs, configs."""
    client = client_for(tracking_uri=uri)
    runs = all_runs(client, experiment)
    trials = split_runs(runs)[1]
    return {"runs": Counter((r.data.tags.get(schema.TAG_ROLE), r.info.status) for r in runs),
            "val_acc steps": sorted(len(client.get_metric_history(r.info.run_id, "val_acc")) for r in trials),
            "configs": sorted(r.data.tags[schema.TAG_CONFIG_HASH] for r in trials),
            "params per trial": sorted(len(r.data.params) for r in trials)}


def check_tables(postgres: PostgresServer, database: str, experiment: str, sweeps: int) -> None:
    """The same in PostgreSQL's own tables: every run FINISHED, ``len(EPOCHS)`` val_acc rows per trial."""
    of_experiment = f"JOIN experiments e ON e.experiment_id = r.experiment_id WHERE e.name = '{experiment}'"
    statuses = postgres.query(database, f"SELECT r.status, count(*) FROM runs r {of_experiment} GROUP BY r.status")
    assert statuses == [("FINISHED", sweeps * (TRIALS + 1))]
    per_run = postgres.query(database, f"SELECT count(m.step) FROM runs r JOIN metrics m ON m.run_uuid = r.run_uuid "
                                       f"{of_experiment} AND m.key = 'val_acc' GROUP BY r.run_uuid")
    assert sorted(n for (n,) in per_run) == [len(EPOCHS)] * (sweeps * TRIALS)


@pytest.fixture(scope="module")
def direct(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """One sweep written straight into a fresh database (its tables made by the sweep's first client).

    Its URI carries a password, as a team's database URI may.
    """
    uri = postgres.create_database("direct", password=PASSWORD)
    runs_dir, started_in = tmp_path_factory.mktemp("pg-direct"), tmp_path_factory.mktemp("pg-cwd")
    printed, cwd = io.StringIO(), os.getcwd()
    os.chdir(started_in)  # MLflow's default artifact root is ./mlruns: the sweep must not use it
    try:
        with contextlib.redirect_stdout(printed):
            rc = main(["sweep", "--runs-dir", str(runs_dir), "--tracking-uri", uri, "--max-concurrent", "2", *SMALL])
    finally:
        os.chdir(cwd)
    assert rc == 0, printed.getvalue()[-3000:]
    assert list(started_in.iterdir()) == []
    return Sweep(uri, runs_dir, printed.getvalue())


@pytest.fixture(scope="module")
def server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``mlflow server`` on a second fresh database, artifacts proxied into a folder of its own."""
    from tests.support.postgres import mlflow_server

    artifacts = tmp_path_factory.mktemp("pg-artifacts")
    with mlflow_server(postgres.create_database("served"), artifacts) as url:
        yield Served(url, artifacts)


def test_a_bare_postgresql_uri_needs_the_driver_sqlalchemy_loads(monkeypatch) -> None:
    """``postgresql://`` is psycopg (3) from SQLAlchemy 2.1 on: the check names that, not psycopg2."""
    import importlib.util

    from resnetx.errors import ConfigError
    from sweep.config.paths import check_database_driver

    check_database_driver("postgresql://me@db/mlflow")  # installed by the dev extra: passes
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the database driver psycopg: pip install psycopg\[binary\]"):
        check_database_driver("postgresql://me:secret@db/mlflow")


@pytest.mark.parametrize(("uri", "shown"), [
    ("postgresql://me:secret@db:5432/mlflow", "postgresql://me:***@db:5432/mlflow"),
    ("postgresql+psycopg://me:p@ss@db/m", "postgresql+psycopg://me:***@db/m"),  # an unencoded @ in it
    ("postgresql://me@/m?host=/run/pg&password=secret&sslmode=require",
     "postgresql://me@/m?host=/run/pg&password=***&sslmode=require"),
    ("postgresql://me@db/mlflow", "postgresql://me@db/mlflow"),  # nothing to hide: the user stays
    ("http://ci:secret@mlflow.lab:5000", "http://ci:***@mlflow.lab:5000"),
    ("sqlite:////tmp/a@b/mlflow.db", "sqlite:////tmp/a@b/mlflow.db"),
])
def test_shown_uris_hide_the_password_only(uri: str, shown: str) -> None:
    assert schema.shown_uri(uri) == shown


def test_make_test_installs_postgresql_when_its_server_is_missing(tmp_path: Path) -> None:
    """.ci/system-deps.sh names Debian's postgresql when no <version>/bin/{initdb,pg_ctl} is there (dry run)."""
    script = Path(__file__).resolve().parents[1] / ".ci" / "system-deps.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSTEM_DEPS_")}
    (tmp_path / "15" / "bin").mkdir(parents=True)
    (tmp_path / "15" / "bin" / "initdb").write_text("")  # not executable, and no pg_ctl: not a server
    done = subprocess.run(["sh", str(script)], env={**env, "SYSTEM_DEPS_POSTGRESQL": str(tmp_path),
                                                    "SYSTEM_DEPS_DRY_RUN": "1"},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert "apt-get install -y postgresql" in done.stdout + done.stderr, done


def test_a_sweep_straight_into_postgresql_tracks_every_trial(direct: Sweep, postgres: PostgresServer,
                                                             tmp_path: Path) -> None:
    """... and leaves what the same sweep (same search, same seed) leaves in the embedded SQLite store."""
    check_sweeps(direct.uri, direct.experiment, sweeps=1)
    sqlite_runs = tmp_path / "sqlite"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["sweep", "--runs-dir", str(sqlite_runs), "--max-concurrent", "2", *SMALL]) == 0
    assert store_counts(direct.uri, direct.experiment) == store_counts(sqlite_uri(sqlite_runs), direct.experiment)
    check_tables(postgres, "direct", direct.experiment, sweeps=1)
    assert not (direct.runs_dir / "mlflow.db").exists()  # nothing went to the embedded store
    artifacts = direct.runs_dir / "artifacts" / direct.experiment  # as with SQLite, not ./mlruns
    experiment = client_for(tracking_uri=direct.uri).get_experiment_by_name(direct.experiment)
    assert experiment.artifact_location == artifacts.as_uri()
    assert len(list(artifacts.rglob(schema.CONFIG_ARTIFACT))) >= TRIALS
    assert "trials 2/2 done: 2 ok" in direct.output and schema.shown_uri(direct.uri) in direct.output


def test_a_password_in_the_uri_is_written_nowhere_others_read(direct: Sweep, postgres: PostgresServer,
                                                              tmp_path: Path) -> None:
    """Not in the runs' params and tags (everyone with the UI reads them), the console, a report, an export."""
    for table in ("params", "tags", "experiment_tags"):
        assert postgres.query("direct", f"SELECT key FROM {table} WHERE value LIKE '%{PASSWORD}%'") == []
    assert PASSWORD not in direct.output
    assert main(["report", "--tracking-uri", direct.uri, "--out", str(tmp_path / "r")]) == 0
    assert main(["export", "--tracking-uri", direct.uri, "--front", "--out", str(tmp_path / "e")]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".md", ".html", ".yaml", ".csv", ".json")]
    assert len(written) >= 4 and not [p for p in written if PASSWORD in p.read_text(errors="replace")]


def test_report_export_and_load_sweep_read_postgresql_back(direct: Sweep, tmp_path: Path, capsys) -> None:
    from reports import load_sweep

    trials = {c.data.tags[schema.TAG_TRIAL_ID] for c in check_sweeps(direct.uri, direct.experiment, sweeps=1)}
    df = load_sweep(tracking_uri=direct.uri)
    assert set(df["trial_id"]) == trials and list(df["epochs"]) == [len(EPOCHS)] * TRIALS
    assert set(df["status"]) == {schema.STATUS_FINISHED} and (df["pareto_rank"] == 0).any()
    assert df.attrs["tracking_uri"] == direct.uri

    report = tmp_path / "report"
    assert main(["report", "--tracking-uri", direct.uri, "--out", str(report)]) == 0
    pareto = (report / "pareto.csv").read_text().splitlines()
    assert len(pareto) == 1 + TRIALS and (report / "index.html").is_file()
    client = client_for(tracking_uri=direct.uri)
    experiment_id = client.get_experiment_by_name(direct.experiment).experiment_id
    on_front = client.search_runs([experiment_id], "tags.on_front = 'true'")
    assert 1 <= len(on_front) <= TRIALS  # the report tagged the runs in PostgreSQL

    exported = tmp_path / "export"
    assert main(["export", "--tracking-uri", direct.uri, "--front", "--out", str(exported)]) == 0
    files = sorted(exported.glob("*.yaml"))
    assert len(files) == len(on_front)
    provenance = yaml.safe_load(files[0].read_text())["provenance"]
    assert provenance["tracking_uri"] == schema.shown_uri(direct.uri) and provenance["trial_id"] in trials
    capsys.readouterr()


def test_a_sweep_through_an_mlflow_server_on_postgresql(server: Served, postgres: PostgresServer,
                                                        tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    rc = main(["sweep", "--runs-dir", str(runs_dir), "--tracking-uri", server.url, "--experiment", "served",
               "--max-concurrent", "2", *SMALL])
    assert rc == 0
    children = check_sweeps(server.url, "served", sweeps=1)
    check_tables(postgres, "served", "served", sweeps=1)
    assert not (runs_dir / "mlflow.db").exists()
    for child in children:  # uploaded through the server into its folder, not written by the client
        assert child.info.artifact_uri.startswith("mlflow-artifacts:/"), child.info.artifact_uri
        assert list(server.artifacts.rglob(f"{child.info.run_id}/artifacts/{schema.CONFIG_ARTIFACT}"))


def test_two_sweeps_at_once_into_one_server(server: Served, postgres: PostgresServer, tmp_path: Path) -> None:
    """Two researchers' ``resnetx sweep`` at the same moment, into the same (new) experiment.

    The same experiment, because that is the team's case and the harder one: both processes
    find it missing and create it at once (one loses and takes the other's), then write their
    runs side by side; each sweep keeps its own runs folder (Ray's state is per machine).
    """
    from reports import load_sweep

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "sweep", "--runs-dir", str(tmp_path / f"runs-{i}"), "--tracking-uri",
         server.url, "--experiment", "team", "--seed", str(i), "--max-concurrent", "1", *SMALL],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        for i in range(2)]
    try:
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(out[-3000:] for out in outputs)
    children = check_sweeps(server.url, "team", sweeps=2)
    check_tables(postgres, "served", "team", sweeps=2)
    for parent in {c.data.tags[schema.TAG_PARENT] for c in children}:
        assert len(load_sweep(tracking_uri=server.url, experiment="team", sweep=parent)) == TRIALS
    experiments = postgres.query("served", "SELECT count(*) FROM experiments WHERE name = 'team'")
    assert experiments == [(1,)]  # created once although both asked at the same moment


def test_resnetx_train_into_postgresql_keeps_artifacts_in_its_runs_folder(postgres: PostgresServer,
                                                                         tmp_path: Path) -> None:
    """A new experiment's artifacts went to ./mlruns of the folder `resnetx train` was started in."""
    uri = postgres.create_database("train_direct")
    runs_dir, started_in = tmp_path / "runs", tmp_path / "cwd"
    started_in.mkdir()
    cwd = os.getcwd()
    os.chdir(started_in)
    try:
        rc = main(["train", "tiny", "--runs-dir", str(runs_dir), "--tracking-uri", uri, "--experiment", "solo",
                   "--set", "train.epochs=1", "--set", "data.subset=200"])
    finally:
        os.chdir(cwd)
    assert rc == 0
    assert list(started_in.iterdir()) == []
    (run,) = all_runs(client_for(tracking_uri=uri), "solo")
    assert run.info.artifact_uri.removeprefix("file://").startswith(str(runs_dir / "artifacts" / "solo"))
    assert run.info.status == "FINISHED"
