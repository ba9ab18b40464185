"""A sweep that cannot start leaves nothing behind, and does not hide the sweep before it.

Real ``resnetx sweep`` processes (the shipped trainable, a real sqlite MLflow store) whose data
is missing: CIFAR-10 for ``fold-ablation`` under an empty ``data.root``, MNIST for the
``quick`` space (not installed anywhere here). Each must exit 2 with one line, before Ray
starts and before the sweep's parent run opens. "Starts no Ray" is checked three ways: the
process's own ``ray.is_initialized()``, no session folder under its ``RAY_TMPDIR`` (every Ray
runtime writes one there first), and no process left whose command line names that folder.

The time limit is on CPU seconds (the command and everything it started, as ``getrusage``
counts them once they are reaped), not wall time: the CI machine has 2 cores shared with
other jobs (DESIGN.md §4: no absolute wall-clock thresholds). A Ray start alone costs several
CPU seconds in its raylet, GCS and workers, which also count here.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reports import schema
from sweep.config.paths import sqlite_uri
from sweep.tracking.store import RunLogger, prepare_store

try:
    from test_reports import _log_trial, experiment_config
except ImportError:  # tests imported as a package
    from tests.test_reports import _log_trial, experiment_config

REPO = Path(__file__).resolve().parents[1]
CPU_LIMIT_S = 10.0
pytestmark = pytest.mark.slow  # starts the CLI in fresh interpreters (torch, Ray and MLflow imports)

# The process under test: the CLI's own main(), then whether Ray was initialised in it.
WRAPPER = """
import sys
from sweep.cli import main
code = main(sys.argv[1:])
import ray
print("ray initialized:", ray.is_initialized())
from ray._common.utils import get_default_ray_temp_dir  # where a runtime started here writes its session
print("ray temp dir:", get_default_ray_temp_dir())
sys.exit(code)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Any]:
    """A store holding a finished sweep with two trials, then a newer empty sweep run that an
    earlier failed start left behind (FAILED, no trials): what a user has after trying."""
    folder = tmp_path_factory.mktemp("cannot-start") / "runs"
    folder.mkdir(parents=True)
    uri = sqlite_uri(folder)
    experiment_id = prepare_store(uri, "resnetx")
    tags = {schema.TAG_ROLE: schema.ROLE_SWEEP, schema.TAG_SPACE: "quick", schema.TAG_SEARCH: "optuna",
            schema.TAG_OBJECTIVES: "val_acc:max,params:min", schema.TAG_SWEEP_SEED: "0"}
    previous = RunLogger.start(uri, experiment_id, name="prev-sweep", tags=tags)
    for i, (fold, acc) in enumerate(((1, 0.9), (2, 0.92))):
        config = experiment_config({"fold": fold}, i, None)
        _log_trial(uri, experiment_id, previous.run_id, f"p{i}", config, schema.STATUS_FINISHED, acc, 100_000 + i)
    previous.end()
    time.sleep(0.01)  # start times are in milliseconds: keep "newer" unambiguous
    stale = RunLogger.start(uri, experiment_id, name="stale-empty", tags=tags)
    stale.end("FAILED")
    return {"folder": folder, "uri": uri, "experiment_id": experiment_id, "previous": previous.run_id,
            "stale": stale.run_id}


def all_runs(uri: str) -> list[Any]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return list(client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000))


def processes_naming(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (Ray's raylet/GCS name their session folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


CASES = {
    # from scratch only: its ImageNet weights would be refused first when offline (preflight checks them first)
    "cifar10-missing": (["--space", "fold-ablation", "--set", "train.weights=null"], "has no cifar10"),
    "mnist-nowhere": (["--space", "quick", "--set", "data.name=mnist"], "has no mnist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_sweep_whose_data_is_missing_exits_2_before_ray_and_before_any_run(store, tmp_path, case):
    if case == "mnist-nowhere" and Path("/usr/share/datasets/mnist").exists():
        pytest.skip("MNIST is installed on this machine (/usr/share/datasets/mnist)")
    args, reason = CASES[case]
    empty = tmp_path / "no-data"
    empty.mkdir()
    ray_tmp = tmp_path / "ray-tmp"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RESNETX_"))}
    env.update(RAY_TMPDIR=str(ray_tmp), RAY_USAGE_STATS_ENABLED="0", MLFLOW_DISABLE_TELEMETRY="true")
    before = {r.info.run_id for r in all_runs(store["uri"])}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", WRAPPER, "sweep", *args, "--runs-dir", str(store["folder"]),
                           "--set", f"data.root={empty}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    wall = time.monotonic() - started
    after_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after_usage.ru_utime - usage.ru_utime) + (after_usage.ru_stime - usage.ru_stime)
    print(f"{case}: exit {done.returncode}, {cpu:.1f} CPU s, {wall:.1f} s wall")

    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("resnetx:")]
    assert len(errors) == 1 and errors[0].startswith(f"resnetx: error: data.root: got '{empty}'"), done.stderr
    assert reason in errors[0] and "Traceback" not in done.stderr
    assert cpu < CPU_LIMIT_S, f"{cpu:.1f} CPU s (wall {wall:.1f} s)"
    # no Ray: not initialised, no session folder, nothing left running that names one
    assert "ray initialized: False" in done.stdout, done.stdout
    assert f"ray temp dir: {ray_tmp / 'ray'}" in done.stdout  # the folder checked next is Ray's own
    assert not ray_tmp.exists(), sorted(str(p) for p in ray_tmp.rglob("*"))[:10]
    assert processes_naming(str(ray_tmp)) == []
    # no run opened, none left RUNNING
    runs = all_runs(store["uri"])
    assert {r.info.run_id for r in runs} == before
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []


def test_report_takes_the_last_sweep_with_trials_and_says_so(store, tmp_path, capsys):
    """The empty run left by a failed start is passed over (and named); --sweep still reaches it."""
    from reports.runs import read_sweep_runs
    from sweep.cli import main as cli_main

    assert cli_main(["report", "--runs-dir", str(store["folder"]), "--out", str(tmp_path / "r"), "--no-mlflow"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert (f"report of sweep prev-sweep (run {store['previous']}, 2 trials, the latest sweep with trials; "
            "pick another with --sweep RUN_ID); skipped 1 newer sweep(s) without trials: stale-empty") in out, out
    for name in ("p0", "p1"):
        assert name in out

    sweep = read_sweep_runs(store["uri"], "resnetx")
    assert (sweep.sweep_run_id, sweep.chosen, sweep.skipped, len(sweep.trials)) == (
        store["previous"], "latest", ("stale-empty",), 2)
    given = read_sweep_runs(store["uri"], "resnetx", store["stale"])
    assert (given.sweep_run_id, given.chosen, len(given.trials)) == (store["stale"], "given", 0)
    assert given.describe() == f"sweep stale-empty (run {store['stale']}, 0 trials, given by --sweep)"
