"""Run a Ray Tune sweep over a ResNetX search space, tracked in MLflow (the main job).

With no options: the `quick` space on the offline `digits` dataset, a local Ray runtime,
MLflow in ./resnetx-runs/mlflow.db, multi-objective search (max val_acc, min params); ends by
printing the Pareto front and where the report and the MLflow UI are. The same sweep from
Python: `from sweep import run_sweep` (docs/api.md).

Examples:
  resnetx sweep
  resnetx sweep --space cifar10-pareto --gpus-per-trial 0.25 --num-samples 64 --scheduler asha
  resnetx sweep --address auto --storage-path /mnt/nfs/ray --tracking-uri http://head:5000
  resnetx sweep --resume                      # continue the last interrupted sweep
"""

from __future__ import annotations

import argparse
from typing import Any

from sweep.config.settings import SCHEDULERS, SEARCHES, SweepSettings

# The one set of defaults is SweepSettings' (the Python API uses it too); argparse reads it from there.
DEFAULTS: dict[str, Any] = {name: info.default for name, info in SweepSettings.model_fields.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def add(flag: str, field: str, **kwargs: Any) -> None:
        parser.add_argument(flag, dest=field, default=DEFAULTS[field], **kwargs)

    add("--space", "space", help="built-in space name or YAML file (default: %(default)s)")
    add("--search", "search", help=f"{' | '.join(SEARCHES)} (default: %(default)s)")
    add("--grid-order", "grid_order", help="grid: declared | shuffled (one fixed order, the same for every "
        "--seed: a partial grid at another --seed retrains the same networks) (default: %(default)s)")
    add("--objectives", "objectives", help="e.g. val_acc:max,params:min (default: the space's objectives)")
    add("--scheduler", "scheduler", help=f"{' | '.join(SCHEDULERS)}: early stopping (default: %(default)s)")
    add("--grace-period", "grace_period", type=int, help="asha/moasha: the epoch of the first rung "
        "(default: the first epoch after the trials' train.warmup_epochs, e.g. 2 after one warm-up "
        "epoch, 1 without warm-up; a value given here wins)")
    add("--rung-metric", "rung_metric", help="asha/moasha: what a rung ranks by: accuracy (the accuracy "
        "objective at the rung) | tse (the sum of the training losses so far, lower is better; ranks "
        "networks by their final accuracy far better at early rungs) | auto (tse for moasha, accuracy "
        "for asha: what docs/benchmarks.md measured) (default: %(default)s)")
    add("--reduction-factor", "reduction_factor", type=float, help="asha/moasha: keep 1/F of each rung "
        "(default: %(default)s)")
    add("--num-samples", "num_samples", type=int, help="number of trials (default: %(default)s)")
    add("--max-concurrent", "max_concurrent", type=int, help="trials at once (default: what resources allow)")
    add("--cpus-per-trial", "cpus_per_trial", type=float, help="(default: %(default)s)")
    add("--gpus-per-trial", "gpus_per_trial", type=float,
        help="fractions such as 0.25 pack trials on one GPU (default: %(default)s)")
    add("--time-budget", "time_budget_s", type=float, help="seconds for the whole sweep (default: no limit)")
    add("--trial-timeout", "trial_timeout_s", type=float, help="seconds per trial (default: no limit)")
    add("--max-failures", "max_failures", type=int,
        help="retries of a trial after a transient failure (default: %(default)s)")
    add("--seed", "seed", type=int, help="(default: %(default)s)")
    add("--experiment", "experiment", help="MLflow experiment (default: %(default)s)")
    add("--name", "name", help="sweep name (default: sweep-<timestamp>)")
    add("--runs-dir", "runs_dir", help="folder for mlflow.db, artifacts, ray, reports (default: ./resnetx-runs)")
    add("--tracking-uri", "tracking_uri", help="MLflow tracking URI (default: sqlite under --runs-dir)")
    add("--storage-path", "storage_path", help="Tune storage (default: <runs-dir>/ray; shared for clusters)")
    add("--address", "address", help="join a Ray cluster: HOST:PORT or auto")
    parser.add_argument("--resume", dest="resume", action="store_true", default=DEFAULTS["resume"],
                        help="continue the last unfinished sweep of --experiment")
    parser.add_argument("--set", dest="sets", action="append", default=list(DEFAULTS["sets"]), metavar="KEY=VALUE",
                        help="override every trial's config, e.g. train.epochs=2 (repeatable)")
    parser.add_argument("--no-report", dest="report", action="store_false", default=DEFAULTS["report"],
                        help="skip the Pareto report at the end")
    # Names in sweep.tune.trainables.TRAINABLES, checked at plan time (register_trainable adds more)
    add("--trainable", "trainable", help="resnetx (train) | replay (report a recorded benchmark's epochs, "
        "with --record; docs/benchmarks.md) (default: %(default)s)")
    add("--record", "record", help="replay: a `resnetx record` file, e.g. bench/records/fmnist-bench.csv")
    parser.add_argument("--confirm", action="store_true", help="then retrain the front at full fidelity with "
                        "several seeds (resnetx confirm: the space's final: recipe and confirm: rule)")


def settings_from_args(args: argparse.Namespace) -> SweepSettings:
    """The parsed options as validated settings, through the API's own settings handling."""
    from sweep.api import sweep_settings

    return sweep_settings(**{k: v for k, v in vars(args).items() if k in SweepSettings.model_fields})


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sweep.api import confirm_settings, run_settings

    console = Console()
    result = run_settings(settings_from_args(args), console)
    if getattr(args, "confirm", False) and not result.interrupted:
        from sweep.cli.confirm import OWN

        own = {k: getattr(args, k) for k in OWN if k not in ("name", "sets") and getattr(args, k, None) is not None}
        run_settings(confirm_settings(result.parent_run_id, **own), console)
    return 0
