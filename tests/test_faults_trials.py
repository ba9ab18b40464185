"""Trial faults injected for real into one sweep: a hang, out of memory, storage full.

One sweep of the deterministic stand-in trainable (``--trainable synthetic``, real Ray trials,
real checkpoints, real MLflow) over six configs, told apart by ``train.lr``:

- 0.01, 0.06: healthy;
- 0.02: its epoch-2 checkpoint (3 MB) does not fit the storage path, a real 2 MB tmpfs;
- 0.03: hangs in epoch 1 without ever reporting; 0.04: hangs in epoch 2 after one report
  (both blocked in a C-level wait that Python cannot interrupt);
- 0.05: raises ``torch.OutOfMemoryError`` in epoch 2.

What must survive: the sweep finishes; every trial has one MLflow run, none left RUNNING; only
the faulty trials fail; out of memory is not retried; the storage-full trial keeps its last
good checkpoint, loadable with ``weights_only=True``, and gives the space back.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from reports import schema
from sweep.cli import main
from tests.test_faults_common import (
    attempts,
    fresh_runs_dir,
    listeners_below,
    runs_of,
    standin_env,
    steps,
    tiny_filesystem,
    tune_trials,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]
TRIAL_TIMEOUT_S = 15
CLEANUP_S = 3  # TUNE_FORCE_TRIAL_CLEANUP_S: how long a stopped trial that does not stop is given
HEALTHY, BIG, HANG_SILENT, HANG_AFTER_REPORT, OOM, HEALTHY_TOO = 0.01, 0.02, 0.03, 0.04, 0.05, 0.06
SPACE = """\
name: trial-faults
model: {stem: cifar, unit: basic, stem_width: 8, base: 8, fold: 1, num_nodes: [1, 1, 1]}
data: {name: digits, image_size: 16}
train:
  epochs: 3
  lr: {grid: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]}
"""


class ListenerWatch(threading.Thread):
    """Samples, every second while the sweep runs, the listening sockets of this process and its children."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[tuple[str, str, int]] = set()
        self.token_auth: set[bool] = set()
        self.done = threading.Event()

    def run(self) -> None:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        while not self.done.wait(1.0):
            found = listeners_below(os.getpid())
            self.seen |= found
            if found:
                self.token_auth.add(bool(is_token_auth_enabled()))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Any:
    """Run the sweep once; the tests below read what it left."""
    root = tmp_path_factory.mktemp("trial-faults")
    (root / "space.yaml").write_text(SPACE)
    runs_dir = fresh_runs_dir(root / "runs")
    with tiny_filesystem(root / "tiny", size_kb=2048) as tiny, pytest.MonkeyPatch.context() as mp:
        storage = tiny or root / "storage"
        options: dict[str, Any] = {"epoch_s": 0.3, "checkpoint_kb": 4, "attempts_dir": str(root / "attempts"),
                                   "faults": [
                                       {"when": {"train.lr": BIG}, "fault": "big_checkpoint", "epoch": 2, "kb": 3000},
                                       {"when": {"train.lr": HANG_SILENT}, "fault": "hang", "epoch": 1},
                                       {"when": {"train.lr": HANG_AFTER_REPORT}, "fault": "hang", "epoch": 2},
                                       {"when": {"train.lr": OOM}, "fault": "oom", "epoch": 2}]}
        if tiny is None:  # no right to mount: a per-file size limit in the trial process stands in
            options["file_size_limit_kb"] = 2048
        for key, value in standin_env(**options).items():
            mp.setenv(key, value)
        mp.setenv("TUNE_FORCE_TRIAL_CLEANUP_S", str(CLEANUP_S))
        watch = ListenerWatch()
        watch.start()
        started = time.monotonic()
        rc = main(["sweep", "--trainable", "synthetic", "--runs-dir", str(runs_dir), "--storage-path", str(storage),
                   "--space", str(root / "space.yaml"), "--search", "grid", "--num-samples", "6",
                   "--max-concurrent", "4", "--cpus-per-trial", "0.5", "--max-failures", "1",
                   "--trial-timeout", str(TRIAL_TIMEOUT_S), "--no-report"])
        elapsed = time.monotonic() - started
        watch.done.set()
        watch.join(timeout=10)
        parents, children, client = runs_of(runs_dir)
        tune_path = parents[0].data.tags["tune_path"]
        trials = {t["results"][0]["config_hash"] if t["results"] else t["trial_id"]: t for t in tune_trials(tune_path)}
        by_lr = {float(c.data.params["train.lr"]): c for c in children}
        big = by_lr[BIG].data.tags[schema.TAG_CONFIG_HASH]
        big_dir = trials[big]["dir"] if big in trials else None
        checkpoints = sorted(p.name for p in big_dir.glob("checkpoint_*")) if big_dir else []
        last_good = torch.load(big_dir / checkpoints[-1] / "checkpoint.pt", weights_only=True) if checkpoints else None
        used = shutil.disk_usage(storage)
        yield {"rc": rc, "elapsed": elapsed, "parents": parents, "by_lr": by_lr, "client": client, "trials": trials,
               "attempts": attempts(root / "attempts"), "checkpoints": checkpoints, "last_good": last_good,
               "tmpfs": tiny is not None, "used_fraction": used.used / used.total, "listeners": watch.seen,
               "token_auth": watch.token_auth, "driver": Path("/proc/self/comm").read_text().strip()}


def _hash(sweep: Any, lr: float) -> str:
    return sweep["by_lr"][lr].data.tags[schema.TAG_CONFIG_HASH]


def test_sweep_finishes_with_one_closed_run_per_trial(sweep):
    assert sweep["rc"] == 0
    assert len(sweep["parents"]) == 1 and sweep["parents"][0].info.status == "FINISHED"
    runs = list(sweep["by_lr"].values())
    assert len(runs) == 6 and len({r.data.tags[schema.TAG_TRIAL_ID] for r in runs}) == 6
    assert all(r.info.status in ("FINISHED", "FAILED") for r in runs), [r.info.status for r in runs]
    print(f"trial-faults sweep: {sweep['elapsed']:.1f} s")


def test_healthy_trials_finish_untouched_by_the_faults(sweep):
    for lr in (HEALTHY, HEALTHY_TOO):
        run = sweep["by_lr"][lr]
        assert run.info.status == "FINISHED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
        assert steps(sweep["client"], run.info.run_id) == [1, 2, 3]
        assert sweep["attempts"][_hash(sweep, lr)] == [0]  # never retried: storage full hit nobody else


def test_hanging_trials_are_ended_by_the_time_limit(sweep):
    after_report = sweep["by_lr"][HANG_AFTER_REPORT]
    assert after_report.data.tags[schema.TAG_STATUS] == schema.STATUS_STOPPED
    assert after_report.info.status == "FINISHED"  # stopped early: its epoch-1 result stays rankable
    assert steps(sweep["client"], after_report.info.run_id) == [1]
    silent = sweep["by_lr"][HANG_SILENT]  # nothing to rank: failed, and the run says why
    assert silent.info.status == "FAILED" and silent.data.tags[schema.TAG_STATUS] == schema.STATUS_FAILED
    assert "before its first result" in silent.data.tags["error"]
    assert steps(sweep["client"], silent.info.run_id) == []
    for lr in (HANG_SILENT, HANG_AFTER_REPORT):
        run = sweep["by_lr"][lr]
        assert sweep["attempts"][_hash(sweep, lr)] == [0]  # a stop is not a failure: no retry
        ran_s = (run.info.end_time - run.info.start_time) / 1000
        assert TRIAL_TIMEOUT_S <= ran_s <= TRIAL_TIMEOUT_S + CLEANUP_S + 20, ran_s


def test_out_of_memory_fails_only_that_trial_in_one_attempt(sweep):
    run = sweep["by_lr"][OOM]
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_FAILED
    assert run.data.tags["error"].startswith("out of memory")
    assert steps(sweep["client"], run.info.run_id) == [1]
    assert sweep["attempts"][_hash(sweep, OOM)] == [0]
    trial = sweep["trials"][_hash(sweep, OOM)]
    assert trial["status"] == "TERMINATED" and trial["num_failures"] == 0


def test_storage_full_fails_the_writer_and_keeps_its_last_checkpoint(sweep):
    run = sweep["by_lr"][BIG]
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_FAILED
    assert "No space left" in run.data.tags["error"] or "too large" in run.data.tags["error"].lower()
    # --max-failures 1: retried once, from its epoch-1 checkpoint, then given up
    assert sweep["attempts"][_hash(sweep, BIG)] == [0, 1]
    trial = sweep["trials"][_hash(sweep, BIG)]
    assert trial["status"] == "ERROR" and trial["num_failures"] == 2
    assert sweep["checkpoints"] == ["checkpoint_000000"]  # the half-written copy was removed
    assert sweep["last_good"]["epoch"] == 1 and sweep["last_good"]["config_hash"] == _hash(sweep, BIG)
    if sweep["tmpfs"]:
        assert sweep["used_fraction"] < 0.5  # the failed copy's space was given back


def test_the_sweep_opens_no_server_of_its_own_and_rays_ports_need_a_token(sweep):
    """A local sweep listens only through Ray's runtime: no dashboard, no MLflow server.

    Ray 2.60's gRPC servers (GCS, raylet, workers, the driver's core worker) bind every
    interface whatever the node address (measured; see docs/reliability.md), so they must
    carry Ray's token authentication, on by default for local clusters since Ray 2.59.
    """
    listeners = sweep["listeners"]
    assert listeners, "no listening socket seen: the watch did not run"
    for name, _, port in listeners:
        assert name in ("gcs_server", "raylet", sweep["driver"]) or name.startswith("ray::"), (name, port)
        assert port not in (8265, 5000), (name, port)  # Ray's dashboard, an MLflow server
    exposed = sorted({(name, ip) for name, ip, _ in listeners if ip not in ("127.0.0.1", "::1")})
    print(f"listening during the sweep: {len(listeners)} sockets, beyond loopback: {exposed}")
    if exposed:
        assert sweep["token_auth"] == {True}
