"""End-to-end sweeps with real Ray, real MLflow and real training on digits."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reports import schema
from sweep.cli import main
from sweep.config.experiment import ExperimentConfig
from tests.sweep_helpers import FAST, all_runs, client_for, split_runs, wait_for

pytestmark = pytest.mark.slow
RAY_KEYS = ("training_iteration", "time_this_iter_s", "timesteps_total", "time_total_s", "done")


def _check_children(client, children, expected: int, space: str = "quick") -> None:
    assert len(children) == expected
    assert len({c.data.tags[schema.TAG_TRIAL_ID] for c in children}) == expected
    for child in children:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        assert child.info.status == "FINISHED", (tags.get("status"), tags.get("error"))
        assert tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
        assert tags[schema.TAG_SPACE] == space and tags[schema.TAG_SEARCH] in ("optuna", "random", "grid")
        assert len(tags[schema.TAG_CONFIG_HASH]) >= 8 and len(tags[schema.TAG_MODEL_HASH]) == 12
        assert params["train.epochs"] == "2" and "model.fold" in params and "model.unit" in params
        assert not any(key in metrics for key in RAY_KEYS)
        assert {"val_acc", "train_loss", "params", "flops", "best_val_acc", "epochs"} <= set(metrics)
        assert "latency_ms" not in metrics  # measured only when it is an objective (sweep.training.costs)
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == [1, 2]
        config_path = client.download_artifacts(child.info.run_id, schema.CONFIG_ARTIFACT)
        config = ExperimentConfig(**yaml.safe_load(Path(config_path).read_text()))
        assert config.config_hash() == tags[schema.TAG_CONFIG_HASH]  # the searcher keys on the resolved config
        assert config.model.canonical_hash() == tags[schema.TAG_MODEL_HASH]


def test_default_sweep_tracks_every_trial_and_reports(tmp_path: Path, capsys) -> None:
    runs_dir = tmp_path / "runs"
    rc = main(["sweep", "--runs-dir", str(runs_dir), "--num-samples", "4", "--max-concurrent", "2", *FAST])
    out = capsys.readouterr().out
    assert rc == 0, out
    client = client_for(runs_dir)
    parents, children = split_runs(all_runs(client))
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags[schema.TAG_OBJECTIVES] == "val_acc:max,params:min"
    assert all(c.data.tags[schema.TAG_PARENT] == parents[0].info.run_id for c in children)
    _check_children(client, children, expected=4)
    assert "Pareto front" in out and "resnetx ui" in out and "index.html" in out
    report_dir = runs_dir / "reports" / parents[0].info.run_id
    assert (report_dir / "pareto.csv").is_file() and (report_dir / "index.html").is_file()
    on_front = [c for c in client.search_runs([parents[0].info.experiment_id], "tags.on_front = 'true'")]
    assert 1 <= len(on_front) <= 4


def _sweep_process(runs_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "sweep.cli", "sweep", "--runs-dir", str(runs_dir), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_interrupted_sweep_resumes_without_rerunning_or_duplicating(tmp_path: Path, capsys) -> None:
    runs_dir = tmp_path / "runs"
    args = ["--num-samples", "4", "--max-concurrent", "1", "--search", "random", *FAST]
    proc = _sweep_process(runs_dir, *args)

    def two_finished() -> bool:  # read-only SQL: an MLflow client here could race the sweep's store creation
        try:
            with sqlite3.connect(f"file:{runs_dir / 'mlflow.db'}?mode=ro", uri=True, timeout=1) as db:
                rows = db.execute("SELECT count(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
                                  "WHERE tags.key = 'role' AND tags.value = 'trial' AND runs.status = 'FINISHED'")
                return rows.fetchone()[0] >= 2
        except sqlite3.Error:
            return False

    try:
        assert wait_for(two_finished, timeout=240), proc.stdout.read() if proc.poll() is not None else ""
        os.killpg(proc.pid, signal.SIGINT)  # what a user's Ctrl-C does
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    client = client_for(runs_dir)
    before = {c.data.tags[schema.TAG_TRIAL_ID]: c for c in split_runs(all_runs(client))[1]}
    finished_before = {t: c.info.end_time for t, c in before.items() if c.info.status == "FINISHED"}
    assert 2 <= len(finished_before) < 4

    capsys.readouterr()
    assert main(["sweep", "--resume", "--runs-dir", str(runs_dir), "--no-report"]) == 0
    assert "trials 4/4 done: 4 ok" in capsys.readouterr().out  # progress counts the trials done before
    parents, children = split_runs(all_runs(client))
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    _check_children(client, children, expected=4)
    after = {c.data.tags[schema.TAG_TRIAL_ID]: c for c in children}
    assert set(before) <= set(after)
    for trial_id, end_time in finished_before.items():  # finished trials were not re-run
        assert after[trial_id].info.end_time == end_time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trials_log_to_a_real_mlflow_tracking_server(tmp_path: Path) -> None:
    import urllib.request

    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200
            except OSError:
                return False

        assert wait_for(healthy, timeout=90), "mlflow server did not start"
        rc = main(["sweep", "--runs-dir", str(tmp_path / "runs"), "--tracking-uri", uri, "--num-samples", "2",
                   "--max-concurrent", "2", "--search", "random", "--no-report", *FAST])
        assert rc == 0
        client = client_for(tracking_uri=uri)
        parents, children = split_runs(all_runs(client))
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        _check_children(client, children, expected=2)
        assert not (tmp_path / "runs" / "mlflow.db").exists()  # nothing went to the local store
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_sweep_on_a_two_node_ray_cluster_uses_both_nodes(tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        rc = main(["sweep", "--address", cluster.address, "--runs-dir", str(tmp_path / "runs"),
                   "--num-samples", "4", "--max-concurrent", "2", "--search", "random", "--no-report", *FAST])
        assert rc == 0
        client = client_for(tmp_path / "runs")
        parents, children = split_runs(all_runs(client))
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        _check_children(client, children, expected=4)
        nodes = {c.data.tags.get("node_id") for c in children}
        assert len(nodes) == 2, nodes
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
