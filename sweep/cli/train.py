"""Train one config without Ray, log it to MLflow, print a summary.

CONFIG is an experiment YAML (model/data/train sections, e.g. examples/digits-tiny.yaml) or a
built-in model name (tiny, cifar-resnet20, resnet18, ...) trained with default data/train
settings. Overrides: --set train.epochs=5 --set data.name=cifar10 --set model.fold=2.
The run goes to the sqlite store under --runs-dir (default ./resnetx-runs) with role=train.
The same from Python: `from sweep import train` (docs/api.md).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="experiment YAML or built-in model name")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field (repeatable), e.g. train.epochs=5")
    parser.add_argument("--runs-dir", default=None, metavar="DIR",
                        help="folder of mlflow.db, artifacts/ and data/ (default ./resnetx-runs or $RESNETX_RUNS_DIR)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking URI (default: sqlite store under --runs-dir)")
    parser.add_argument("--experiment", default=None, metavar="NAME", help="MLflow experiment (default resnetx)")
    parser.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                        help="write checkpoint.pt here (every train.checkpoint_every epochs)")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="continue from DIR/checkpoint.pt (checkpoints keep going to DIR unless --checkpoint-dir)")
    parser.add_argument("--extend-epochs", action="store_true",
                        help="with --resume: continue a finished or shorter run to a larger train.epochs")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def run(args: argparse.Namespace) -> int:
    """``sweep.api.train`` with the parsed options; exit code 1 when training diverged."""
    from rich.console import Console

    from reports import schema
    from sweep.api import train

    result = train(args.config, args.sets, runs_dir=args.runs_dir, tracking_uri=args.tracking_uri,
                   experiment=args.experiment, mlflow=not args.no_mlflow, checkpoint_dir=args.checkpoint_dir,
                   resume_from=args.resume, extend_epochs=args.extend_epochs, console=Console(stderr=False))
    return 0 if result.status == schema.STATUS_FINISHED else 1
