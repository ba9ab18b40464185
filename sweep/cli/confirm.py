"""Retrain a search sweep's best networks at full fidelity with several seeds: the confirmed front.

A sweep searches at low fidelity with one seed per network, and its ranks are inside the seed
noise. `resnetx confirm` picks candidates from a finished search sweep (the space's `confirm:`
section: its front, its top K, or every network within the seed noise of the front), retrains each
with the space's `final:` recipe (e.g. the full training set, 28x28, 30 epochs, test accuracy) and
R seeds, as Ray trials under a parent run of its own (one MLflow run each, tagged stage=confirm),
and reports the confirmed front: each network's mean with a 95% t interval and its share of
bootstrap resamplings of the seeds in which it is on the front. `resnetx export --front` of the
confirm stage exports the confirmed front; `resnetx sweep --resume` continues an interrupted one.

Examples:
  resnetx confirm                                  # the latest search sweep of --experiment
  resnetx confirm --sweep RUN_ID --seeds 5 --candidates within-noise --noise 0.01
  resnetx confirm --set train.epochs=30 --gpus-per-trial 0.5
"""

from __future__ import annotations

import argparse
from typing import Any

from sweep.config.settings import SweepSettings

DEFAULTS: dict[str, Any] = {name: info.default for name, info in SweepSettings.model_fields.items()}
# What a confirm stage takes from its own command line (space, objectives, trainable: the search sweep's)
OWN = ("max_concurrent", "cpus_per_trial", "gpus_per_trial", "trial_timeout_s", "max_failures", "experiment",
       "name", "runs_dir", "tracking_uri", "storage_path", "address", "sets", "report")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweep", help="the search sweep's parent run id (default: the latest search sweep)")
    parser.add_argument("--seeds", type=int, help="seeds per candidate (default: the space's confirm.seeds, 3)")
    parser.add_argument("--candidates", help="front | top-K (e.g. top-5) | within-noise (default: the space's "
                        "confirm.candidates, front)")
    parser.add_argument("--noise", type=float, help="within-noise: the seed noise of the accuracy objective "
                        "(default: the space's confirm.noise)")
    add_shared_arguments(parser)


def add_shared_arguments(parser: argparse.ArgumentParser) -> None:
    """The run options a confirm stage has of its own (the sweep command's, same defaults)."""
    def add(flag: str, field: str, **kwargs: Any) -> None:
        parser.add_argument(flag, dest=field, default=DEFAULTS[field], **kwargs)

    add("--max-concurrent", "max_concurrent", type=int, help="trials at once (default: what resources allow)")
    parser.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, help="(default: the search sweep's)")
    parser.add_argument("--gpus-per-trial", dest="gpus_per_trial", type=float, help="(default: the search sweep's)")
    add("--trial-timeout", "trial_timeout_s", type=float, help="seconds per trial (default: no limit)")
    add("--max-failures", "max_failures", type=int, help="(default: %(default)s)")
    add("--experiment", "experiment", help="MLflow experiment (default: %(default)s)")
    add("--name", "name", help="the confirm stage's name (default: sweep-<timestamp>)")
    add("--runs-dir", "runs_dir", help="(default: ./resnetx-runs)")
    add("--tracking-uri", "tracking_uri", help="MLflow tracking URI (default: sqlite under --runs-dir)")
    add("--storage-path", "storage_path", help="Tune storage (default: <runs-dir>/ray)")
    add("--address", "address", help="join a Ray cluster: HOST:PORT or auto")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override the final recipe, e.g. train.epochs=30 (repeatable)")
    parser.add_argument("--no-report", dest="report", action="store_false", default=True,
                        help="skip the report at the end")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (defaults left to the search sweep and the space)."""
    return {k: getattr(args, k) for k in OWN if getattr(args, k, None) is not None}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sweep.api import confirm_settings, run_settings

    settings = confirm_settings(args.sweep, seeds=args.seeds, candidates=args.candidates, noise=args.noise,
                                **options_from_args(args))
    run_settings(settings, Console())
    return 0
