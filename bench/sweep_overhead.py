"""Sweep overhead: how much of the trial slots' time a sweep spends training.

A fixed set of trials (bench/spaces/overhead.yaml: 8 networks of ~20 s on one core, grid search)
runs as one real ``resnetx sweep`` (Ray Tune, MLflow, checkpoints every epoch), ``S`` trials at a
time. From the same run:

    efficiency = (sum of the trials' own training time / S) / wall time of the sweep

where a trial's own time is its ``train_time_s`` (set-up of its model and data included) and the
sweep's wall time runs from the Tuner's start to its end (Ray's start-up and the final report
are printed separately). 100% would mean every slot trained all the time.

    .venv/bin/python bench/sweep_overhead.py                 # 8 trials, 2 slots, 1 CPU each
    .venv/bin/python bench/sweep_overhead.py --epochs 12     # shorter trials
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from reports import schema
from sweep.config.paths import sqlite_uri
from sweep.config.settings import SweepSettings
from sweep.tune.runner import execute_sweep

SPACE = Path(__file__).resolve().parent / "spaces" / "overhead.yaml"


def trial_times(runs_dir: Path) -> list[float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(sqlite_uri(runs_dir))
    exp = client.get_experiment_by_name("resnetx")
    runs = client.search_runs([exp.experiment_id], f"tags.{schema.TAG_ROLE} = '{schema.ROLE_TRIAL}'")
    return [r.data.metrics["train_time_s"] for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=2, help="trials at once (1 CPU each)")
    parser.add_argument("--epochs", type=int, default=None, help="override the trials' epochs")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="resnetx-bench-"))
    sets = (f"train.epochs={args.epochs}",) if args.epochs else ()
    settings = SweepSettings(space=str(SPACE), search="grid", num_samples=8, max_concurrent=args.slots,
                             runs_dir=str(runs_dir), report=False, sets=sets)
    started = time.monotonic()
    outcome = execute_sweep(settings)
    total = time.monotonic() - started
    times = trial_times(runs_dir)
    slot_time = sum(times) / args.slots
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"trials: {len(times)}, own training time {min(times):.1f}-{max(times):.1f} s each, "
          f"sum {sum(times):.1f} s over {args.slots} slots = {slot_time:.1f} s")
    print(f"sweep wall time (Tuner start to end): {outcome.elapsed_s:.1f} s; "
          f"whole command incl. Ray start-up and data: {total:.1f} s")
    print(f"efficiency = slot time / sweep wall time = {slot_time / outcome.elapsed_s:.1%}")


if __name__ == "__main__":
    main()
