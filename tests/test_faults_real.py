"""Faults in real training (the ResNetX trainable): divergence, out of memory, a worker SIGKILLed.

One real sweep on digits under ``--scheduler asha``, three configs run one at a time (grid order):

1. ``train.lr = 1e6``: the loss becomes NaN within the first epoch (checked on CPU: ~0.5 s);
2. ``model.base = 200000`` (via a match on ``train.lr = 0.051``): building the model asks the
   CPU allocator for terabytes, which fails at once (``DefaultCPUAllocator: can't allocate
   memory``, a plain RuntimeError, not ``torch.OutOfMemoryError``). Only where the kernel
   refuses such requests (``vm.overcommit_memory`` 0 or 2); with 1 it would try, so it is left out;
3. ``train.lr = 0.05``: healthy, 4 epochs; once MLflow shows its first epoch, its Ray worker
   process (found from outside, in /proc) is killed with SIGKILL mid-epoch.

What must survive: the killed trial resumes from its checkpoint (no epoch repeated, none logged
twice, one MLflow run) and finishes, not stopped by ASHA; the diverged trial stops in its
epoch, is recorded diverged and never retried; the out-of-memory trial fails in one attempt
without ending the sweep (its report has no accuracy for ASHA); neither stands on the front.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reports import schema
from sweep.cli import main
from tests.test_faults_common import (
    descendants_running,
    epochs_logged,
    fresh_runs_dir,
    runs_of,
    steps,
    tune_trials,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]
DIVERGES, OUT_OF_MEMORY, HEALTHY = 1000000.0, 0.051, 0.05
EPOCHS = 4


def _kernel_refuses_huge_allocations() -> bool:
    return Path("/proc/sys/vm/overcommit_memory").read_text().strip() != "1"


def _space(with_oom: bool) -> str:
    grid = [DIVERGES, OUT_OF_MEMORY, HEALTHY] if with_oom else [DIVERGES, HEALTHY]
    return f"""\
name: real-faults
model:
  stem: cifar
  unit: basic
  stem_width: 16
  base: {{match: train.lr, cases: [{{when: {OUT_OF_MEMORY}, value: 200000}}], default: 16}}
  fold: 2
  num_nodes: [2, 2, 2]
  start_id: 2
  end_id: 6
data: {{name: digits, image_size: 16}}
train:
  epochs: {EPOCHS}
  batch_size: 32
  lr: {{grid: {grid}}}
"""


def checkpoint_registered(tune_root: Path) -> bool:
    """True once Tune's saved experiment state lists a trial checkpoint.

    A function trainable's checkpoint reaches Tune with its report, but Tune registers it only
    after a separate save round trip; a worker killed in between is retried from the checkpoint
    before (docs/reliability.md). The state is saved right after a registration (num_to_keep is
    set), with the checkpoint's folder name inside the trial's pickled checkpoint manager.
    """
    needle = b"checkpoint_000000".hex()
    for state_file in tune_root.glob("*/experiment_state-*.json"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            continue
        for _, meta in state.get("trial_data", []):
            meta = json.loads(meta) if isinstance(meta, str) else meta
            if needle in json.dumps(meta.get("checkpoint_manager", "")):
                return True
    return False


class WorkerKiller(threading.Thread):
    """Kills the healthy trial's Ray worker (SIGKILL) mid-epoch, once its first checkpoint is Tune's."""

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(daemon=True)
        self.runs_dir = runs_dir
        self.killed: list[int] = []
        self.epochs_before_kill = 0

    def run(self) -> None:
        db = self.runs_dir / "mlflow.db"
        if not wait_for(lambda: epochs_logged(db, "train.lr", str(HEALTHY)) >= 1, timeout=300, interval=0.1):
            return
        if not wait_for(lambda: checkpoint_registered(self.runs_dir / "ray"), timeout=60, interval=0.05):
            return
        workers = descendants_running(os.getpid(), "ray::ImplicitFunc")
        self.epochs_before_kill = epochs_logged(db, "train.lr", str(HEALTHY))
        for pid in workers:  # one trial at a time: exactly one worker
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Any:
    root = tmp_path_factory.mktemp("real-faults")
    with_oom = _kernel_refuses_huge_allocations()
    (root / "space.yaml").write_text(_space(with_oom))
    runs_dir = fresh_runs_dir(root / "runs")
    killer = WorkerKiller(runs_dir)
    killer.start()
    started = time.monotonic()
    rc = main(["sweep", "--runs-dir", str(runs_dir), "--space", str(root / "space.yaml"), "--search", "grid",
               "--num-samples", "3" if with_oom else "2", "--max-concurrent", "1", "--scheduler", "asha",
               "--set", "data.subset=400"])
    elapsed = time.monotonic() - started
    killer.join(timeout=5)
    parents, children, client = runs_of(runs_dir)
    trials = {t["results"][0]["config_hash"]: t for t in tune_trials(parents[0].data.tags["tune_path"])}
    report = runs_dir / "reports" / parents[0].info.run_id / "pareto.csv"
    front = [row for row in csv.DictReader(report.open()) if row["on_front"] == "True"] if report.exists() else []
    return {"rc": rc, "elapsed": elapsed, "killer": killer, "parents": parents, "client": client, "trials": trials,
            "by_lr": {float(c.data.params["train.lr"]): c for c in children}, "front": front, "with_oom": with_oom}


def _trial(sweep: Any, lr: float) -> dict:
    return sweep["trials"][sweep["by_lr"][lr].data.tags[schema.TAG_CONFIG_HASH]]


def test_sweep_finishes_with_one_closed_run_per_trial(sweep):
    assert sweep["rc"] == 0 and sweep["parents"][0].info.status == "FINISHED"
    assert len(sweep["by_lr"]) == (3 if sweep["with_oom"] else 2)
    assert all(run.info.status in ("FINISHED", "FAILED") for run in sweep["by_lr"].values())
    print(f"real-faults sweep: {sweep['elapsed']:.1f} s")


def test_killed_worker_resumes_from_its_checkpoint_and_finishes(sweep):
    killer = sweep["killer"]
    assert len(killer.killed) == 1 and 1 <= killer.epochs_before_kill < EPOCHS
    trial = _trial(sweep, HEALTHY)
    assert trial["status"] == "TERMINATED" and trial["num_failures"] == 1  # one retry, after the kill
    results = trial["results"]
    assert [r["epoch"] for r in results] == list(range(1, EPOCHS + 1))  # no epoch trained twice
    restarts = [r["epoch"] for r in results if r["iterations_since_restore"] == 1]
    assert restarts[0] == 1 and len(restarts) == 2 and restarts[1] >= 2  # the retry began after a checkpoint
    run = sweep["by_lr"][HEALTHY]
    assert run.info.status == "FINISHED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
    for metric in ("val_acc", "train_loss", "lr"):  # every step exactly once: nothing logged twice
        assert steps(sweep["client"], run.info.run_id, metric) == list(range(1, EPOCHS + 1))
    # the retry continues the trial's best and its clock from the checkpoint's history
    history = [m.value for m in sweep["client"].get_metric_history(run.info.run_id, "val_acc")]
    assert results[-1]["best_val_acc"] == pytest.approx(max(history))
    assert results[-1]["train_time_s"] >= sum(r["epoch_time_s"] for r in results) * 0.99


def test_diverged_trial_stops_in_its_epoch_and_is_not_retried(sweep):
    run = sweep["by_lr"][DIVERGES]
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_DIVERGED
    assert steps(sweep["client"], run.info.run_id) == [1]
    trial = _trial(sweep, DIVERGES)
    assert trial["status"] == "TERMINATED" and trial["num_failures"] == 0 and len(trial["results"]) == 1
    assert trial["results"][0]["train_loss"] != trial["results"][0]["train_loss"]  # NaN, really


def test_real_out_of_memory_fails_in_one_attempt(sweep):
    if not sweep["with_oom"]:
        pytest.skip("vm.overcommit_memory=1: the kernel would try to give the terabytes")
    run = sweep["by_lr"][OUT_OF_MEMORY]
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_FAILED
    assert "out of memory" in run.data.tags["error"] and "allocate" in run.data.tags["error"]
    trial = _trial(sweep, OUT_OF_MEMORY)
    assert trial["status"] == "TERMINATED" and trial["num_failures"] == 0 and len(trial["results"]) == 1


def test_asha_keeps_the_healthy_trial_and_the_front_excludes_the_faulty(sweep):
    healthy = sweep["by_lr"][HEALTHY]
    # ASHA saw the diverged trial's epoch first (val_acc 0.0 in rung 1) and still let it run to the end
    assert healthy.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
    assert [row["run_id"] for row in sweep["front"]] == [healthy.info.run_id]
    for lr in (DIVERGES, OUT_OF_MEMORY) if sweep["with_oom"] else (DIVERGES,):
        faulty = sweep["client"].get_run(sweep["by_lr"][lr].info.run_id)
        assert faulty.data.tags.get(schema.TAG_ON_FRONT) != "true"
