"""A record against reality: retrain a few of its networks with ``resnetx train`` and compare.

Each chosen network is retrained from its config with its recorded seed (one CPU thread, as the
record's sweeps ran); its final validation accuracy must land within ``--sds`` standard
deviations of the record's own seed-to-seed difference (its replicated networks). On the
recording machine a retrain is bit-identical; on another CPU float differences move it by less
than a seed would. A *new* seed is a fresh draw of that noise, and the smallest networks are
noisier than the replicated ones (fmnist-bench's 054240ff901e, 4,098 parameters, moved by 0.032 at
seed 12345), so this is a check of the record, not a unit test: minutes of real training.
It was in the unit suite (tests/test_replay_sweep.py) until the review of 7bd5730.

    .venv/bin/python bench/validate_record.py                                  # fmnist-bench, 3 networks
    .venv/bin/python bench/validate_record.py --record bench/records/fmnist-bench-2.csv --space fmnist-bench-2

Exit status 1 when a network lands outside the tolerance (each is printed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from reports import schema
from search_spaces import load_space
from sweep.config.experiment import trial_key
from sweep.tracking.record import read_record

REPO = Path(__file__).resolve().parents[1]


def retrain(points: dict[str, dict], key: str, seed: int, work: Path) -> float:
    """Final val_acc of ``resnetx train`` of network ``key`` at ``seed`` (its own MLflow store under ``work``)."""
    from mlflow.tracking import MlflowClient

    from sweep.config.paths import sqlite_uri

    config_file = work / f"{key}.yaml"
    config_file.write_text(json.dumps(points[key]))
    runs_dir = work / key
    command = [sys.executable, "-m", "sweep.cli", "train", str(config_file), "--set", f"train.seed={seed}",
               "--set", "train.num_threads=1", "--runs-dir", str(runs_dir), "--experiment", "retrain"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"resnetx train of {key} failed: {done.stderr[-2000:]}")
    client = MlflowClient(sqlite_uri(runs_dir))
    experiment = client.get_experiment_by_name("retrain")
    (run,) = client.search_runs([experiment.experiment_id], f"tags.{schema.TAG_ROLE} = '{schema.ROLE_TRAIN}'")
    return float(run.data.metrics["val_acc"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", default=str(REPO / "bench" / "records" / "fmnist-bench.csv"))
    parser.add_argument("--space", default="fmnist-bench")
    parser.add_argument("--networks", type=int, default=3)
    parser.add_argument("--pick-seed", type=int, default=2026, help="which networks (numpy seed)")
    parser.add_argument("--sds", type=float, default=3.0, help="tolerance in sds of a seed-to-seed difference")
    args = parser.parse_args(argv)
    record = read_record(args.record)
    tolerance = args.sds * float(record.replicate_spread()["difference"].std(ddof=1))
    points = {trial_key(p): p for p in load_space(args.space).every_point()}
    chosen = sorted(np.random.default_rng(args.pick_seed).choice(record.keys, size=args.networks, replace=False))
    finals = record.final().set_index("config_hash")
    outside = 0
    with tempfile.TemporaryDirectory(prefix="resnetx-validate-") as work:
        for key in chosen:
            seed = int(record.curve(key)["seed"].iloc[0])
            recorded, again = float(finals.loc[key, "val_acc"]), retrain(points, key, seed, Path(work))
            ok = abs(again - recorded) <= tolerance
            outside += not ok
            print(f"{key}: recorded {recorded:.4f}, retrained {again:.4f}, difference {again - recorded:+.4f} "
                  f"({'within' if ok else 'OUTSIDE'} {tolerance:.4f})", flush=True)
    return 1 if outside else 0


if __name__ == "__main__":
    raise SystemExit(main())
