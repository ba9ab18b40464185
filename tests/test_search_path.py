"""The search path end to end: results that reach the searcher, and sweeps that say why they stopped.

Real Ray Tune and MLflow with the deterministic stand-in trainable (tests/support/standin.py).
"""

from __future__ import annotations

import glob
import json
import os
import pickle
import signal
import textwrap
from pathlib import Path

import pytest

from reports import schema
from sweep.cli import main
from tests.test_faults_common import (
    fresh_runs_dir,
    runs_of,
    standin_env,
    sweep_process,
    trial_runs_with_status,
    wait_for,
)

pytestmark = pytest.mark.slow
LRS = (0.011, 0.012, 0.013, 0.014)  # one grid point each; 0.012 crashes in the first run
SPACE = textwrap.dedent("""
    name: four-points
    objectives: [val_acc:max, params:min]
    model: {stem: cifar, in_channels: 1, num_classes: 10, base: 8, stem_width: 8, unit: basic,
            bottle_scale: 1.0, num_nodes: [1, 1]}
    data: {name: digits, image_size: 8}
    train: {epochs: 3, lr: {grid: [0.011, 0.012, 0.013, 0.014]}}
""")


def searcher_results(tune_path: str) -> dict:
    """The searcher's result cache as Tune saved it with the sweep's state."""
    files = sorted(glob.glob(os.path.join(tune_path, "searcher-state-*.pkl")), key=os.path.getmtime)
    assert files, f"no searcher state in {tune_path}"
    with open(files[-1], "rb") as handle:
        state = pickle.load(handle)
    return state["results"]


def test_a_trial_rerun_by_resume_reaches_the_searcher(tmp_path: Path) -> None:
    """Tune's ConcurrencyLimiter dropped on_trial_complete of a trial it no longer counted as live: a
    trial that errored and was re-run by --resume never reached the searcher's result cache."""
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    args = ["--trainable", "synthetic", "--space", str(space), "--search", "grid", "--num-samples", "4",
            "--max-concurrent", "1", "--max-failures", "0", "--no-report"]
    crash = {"epoch_s": 0.4, "faults": [{"when": {"train.lr": 0.012}, "fault": "crash", "epoch": 1}]}
    proc = sweep_process(runs_dir, args, standin_env(**crash))
    db = runs_dir / "mlflow.db"
    try:
        failed_then_one_more = wait_for(lambda: trial_runs_with_status(db, "FAILED") >= 1
                                        and trial_runs_with_status(db, "FINISHED") >= 2, timeout=240)
        assert failed_then_one_more, proc.stdout.read() if proc.poll() is not None else "sweep too slow"
        os.killpg(proc.pid, signal.SIGINT)  # a user's Ctrl-C: Tune saves its state, the sweep can resume
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    parents, children, _ = runs_of(runs_dir)
    tune_path = parents[0].data.tags["tune_path"]
    crashed = next(c for c in children if float(c.data.params["train.lr"]) == 0.012)
    key = crashed.data.tags[schema.TAG_CONFIG_HASH]
    assert searcher_results(tune_path).get(key) is None  # it failed: nothing to reuse yet

    os.environ.pop("RESNETX_STANDIN", None)  # the transient fault is gone on the resume
    assert main(["sweep", "--resume", "--runs-dir", str(runs_dir), "--no-report"]) == 0
    # The re-run's result reached the searcher: counted the moment it arrived (search-stats.json) and
    # recorded on the parent run; Tune's own copy of the searcher state follows when Tune saves it.
    stats = json.loads((Path(f"{tune_path}-resnetx") / "search-stats.json").read_text())
    assert stats["results_known"] == 4  # all four networks, the re-run one included (before the fix: 3)
    parents, _, _ = runs_of(runs_dir)
    assert parents[0].data.metrics["search_results_known"] == 4
    parents, children, _ = runs_of(runs_dir)
    rerun = next(c for c in children if c.data.tags[schema.TAG_CONFIG_HASH] == key)
    assert rerun.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED


def test_a_sweep_that_runs_out_of_points_says_why(tmp_path: Path, capsys, monkeypatch) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    for name, value in standin_env(epoch_s=0.05).items():
        monkeypatch.setenv(name, value)
    assert main(["sweep", "--trainable", "synthetic", "--space", str(space), "--search", "grid",
                 "--num-samples", "6", "--runs-dir", str(runs_dir), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "4 of 6 trials ran: the space has no more points" in " ".join(out.split())
    parents, _, _ = runs_of(runs_dir)
    metrics = parents[0].data.metrics
    assert metrics["search_proposed"] == 4 and metrics["search_trained"] == 4
    assert metrics["search_infeasible"] == 0 and metrics["search_duplicates"] == 0
    assert "no more points" in parents[0].data.tags["search_stop_reason"]


def test_a_used_up_space_stops_with_its_counts_recorded(tmp_path: Path, capsys, monkeypatch) -> None:
    """Random search over a space of 2 networks: after the 2, every proposal is a duplicate."""
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.replace("lr: {grid: [0.011, 0.012, 0.013, 0.014]}", "lr: {choice: [0.011, 0.012]}"))
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    for name, value in standin_env(epoch_s=0.05).items():
        monkeypatch.setenv(name, value)
    assert main(["sweep", "--trainable", "synthetic", "--space", str(space), "--search", "random",
                 "--num-samples", "5", "--max-concurrent", "1", "--runs-dir", str(runs_dir), "--no-report"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    # 3 duplicates in a row, then the searcher looks for an untrained point: on a finite space it
    # knows every one, so it stops at once and says so (it used to wait for 200 duplicates)
    assert ("2 of 5 trials ran: every one of the 2 networks of the space was started (2 trained to the end, "
            "0 stopped early, 0 failed, 0 running): the space is used up") in out
    parents, _, _ = runs_of(runs_dir)
    metrics = parents[0].data.metrics
    assert metrics["search_trained"] == 2 and 3 <= metrics["search_duplicates"] < 200
