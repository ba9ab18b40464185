"""Replay speed: a replayed sweep's wall time against the training time it stands for.

A real ``resnetx sweep --trainable replay`` (Ray Tune, MLflow, ASHA, one trial at a time) of
``--trials`` random networks of a committed record. Its trials report the recorded epochs without
training or sleeping; the ratio

    speed-up = recorded training time of the epochs the sweep ran / the sweep's wall time

says how much cheaper a replayed study is than the real one (Ray's start-up included). The
64-trial version was a wall-clock assert (< 60 s) in the unit suite until the review of 7bd5730;
the unit suite keeps the check that the replay runs the simulator's trials to the same epochs.

    .venv/bin/python bench/replay_speed.py                 # fmnist-bench, 64 trials
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from reports import schema
from sweep.cli import main as resnetx
from sweep.tracking.record import read_record

REPO = Path(__file__).resolve().parents[1]


def ran_epochs(runs_dir: Path) -> list[tuple[str, int]]:
    """(config hash, epochs reported) of every trial run of the sweep in ``runs_dir``."""
    from mlflow.tracking import MlflowClient

    from sweep.config.paths import sqlite_uri

    client = MlflowClient(sqlite_uri(runs_dir))
    experiment = client.get_experiment_by_name(schema.DEFAULT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], f"tags.{schema.TAG_ROLE} = '{schema.ROLE_TRIAL}'")
    return [(r.data.tags[schema.TAG_CONFIG_HASH], int(r.data.metrics["epoch"])) for r in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", default=str(REPO / "bench" / "records" / "fmnist-bench.csv"))
    parser.add_argument("--space", default="fmnist-bench")
    parser.add_argument("--trials", type=int, default=64)
    args = parser.parse_args(argv)
    record = read_record(args.record)
    with tempfile.TemporaryDirectory(prefix="resnetx-replay-speed-") as work:
        runs_dir = Path(work) / "runs"
        started = time.perf_counter()
        rc = resnetx(["sweep", "--trainable", "replay", "--record", args.record, "--space", args.space,
                      "--runs-dir", str(runs_dir), "--search", "random", "--num-samples", str(args.trials),
                      "--scheduler", "asha", "--max-concurrent", "1", "--no-report"])
        wall = time.perf_counter() - started
        if rc != 0:
            return rc
        trials = ran_epochs(runs_dir)
    recorded = sum(float(record.curve(key)["epoch_time_s"].iloc[:epochs].sum()) for key, epochs in trials)
    print(f"{platform.processor() or platform.machine()}, {len(trials)} replayed trials: wall {wall:.1f} s for "
          f"{recorded:,.0f} s of recorded training (speed-up {recorded / wall:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
