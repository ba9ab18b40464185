"""Chaos soak (long): 540 trials, 16 at a time, under a stream of SIGKILLs; nothing may be lost or done twice.

The long version of ``tests/test_chaos_soak.py`` (same machinery: ``tests/support/chaos.py``).
A stand-in sweep (``--trainable synthetic``: real Ray Tune trials with a real checkpoint every
epoch, deterministic accuracy, ``--search grid`` over every one of the 540 distinct networks of a
finite space, 4 epochs each, ``--cpus-per-trial 0.125``, ``--max-concurrent 16``) logs to a real
``mlflow server`` on sqlite while:

- a random trial worker (``ray::ImplicitFunc.train`` below the driver) is SIGKILLed every
  ``--kill-every`` seconds (uniform in the range);
- the driver is SIGKILLed once 30% of the trials have finished (with every process it left),
  then ``resnetx sweep --resume`` continues the sweep;
- the MLflow server is SIGKILLed once 60% have finished, and started again on the same port
  and file ``--server-down`` seconds later.

Then every check of the short test: one MLflow run per network with steps 1..E of each epoch
metric exactly once, every run FINISHED (none RUNNING), the runs' networks equal to the dry
walk of the sweep's searcher, runs finished before the driver kill untouched, Tune's trial list
one TERMINATED trial per network, the searcher's counts adding up (proposed = trained +
duplicates + infeasible) and equal to the dry walk's, the stand-in's attempt files naming only
those networks with no retry starting before an earlier one. Prints the figures; exit status 1
if any check failed.

    nice .venv/bin/python bench/chaos_soak.py                       # 540 trials, 16 at a time
    .venv/bin/python bench/chaos_soak.py --small --concurrent 8     # the short test's sweep
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support: the stand-in trainable and the chaos machinery

from tests.support.chaos import SoakSettings, check, run_soak, soak_space, summary  # noqa: E402

UNITS = ["basic", "preact_basic", "bottleneck", "mbconv"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the short test's space (86 networks)")
    parser.add_argument("--concurrent", type=int, default=16)
    parser.add_argument("--cpus-per-trial", type=float, default=0.125)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--epoch-s", type=float, default=0.3, help="the stand-in's seconds per epoch")
    parser.add_argument("--kill-every", default="2,5", help="seconds between worker kills: LOW,HIGH")
    parser.add_argument("--server-down", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--root", default=None, help="folder for the store, Tune's state, logs (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the figures and problems here")
    args = parser.parse_args(argv)
    low, high = (float(v) for v in args.kill_every.split(","))
    space = (soak_space(["basic", "bottleneck"], [8, 16], [0.1], args.epochs) if args.small
             else soak_space(UNITS, [8, 16], [0.05, 0.1, 0.2], args.epochs))
    settings = SoakSettings(space_text=space, concurrent=args.concurrent, cpus_per_trial=args.cpus_per_trial,
                            epoch_s=args.epoch_s, kill_every_s=(low, high), server_down_s=args.server_down,
                            timeout_s=args.timeout)
    root = Path(args.root).resolve() if args.root else Path(tempfile.mkdtemp(prefix="resnetx-chaos-soak-"))
    print(f"chaos soak in {root} ({platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
    run = run_soak(root, settings, log=lambda line: print(line, flush=True))
    figures, problems = check(run)
    print(summary(figures))
    for kind, text in problems.items():
        print(f"PROBLEM {kind}: {text}")
    if not problems:
        print("no problem found: nothing lost, nothing twice, none RUNNING")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "problems": problems,
                                               "events": run.events}, indent=2, default=str))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
