"""Train one config without Ray, log it to MLflow, print a summary.

CONFIG is an experiment YAML (model/data/train sections, e.g. examples/digits-tiny.yaml) or a
built-in model name (tiny, cifar-resnet20, resnet18, ...) trained with default data/train
settings. Overrides: --set train.epochs=5 --set data.name=cifar10 --set model.fold=2.
The run goes to the sqlite store under --runs-dir (default ./resnetx-runs) with role=train.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any


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


def _run_name(spec: str) -> str:
    path = Path(spec)
    return f"train-{path.stem if path.suffix else spec}"


def _open_run(args: argparse.Namespace, cfg: Any, folder: Path) -> Any:
    """Create the store/experiment, start a role=train run, log params and config.yaml."""
    from reports import schema
    from sweep.config.paths import DEFAULT_EXPERIMENT, resolve_tracking_uri
    from sweep.tracking.store import RunLogger, prepare_store

    uri = resolve_tracking_uri(args.tracking_uri, folder)
    experiment_id = prepare_store(uri, args.experiment or DEFAULT_EXPERIMENT)
    tags = {schema.TAG_ROLE: schema.ROLE_TRAIN, schema.TAG_DATASET: cfg.data.name,
            schema.TAG_CONFIG_HASH: cfg.config_hash(), schema.TAG_MODEL_HASH: cfg.model.canonical_hash(),
            schema.TAG_STATUS: schema.STATUS_RUNNING}
    logger = RunLogger.start(uri, experiment_id, name=_run_name(args.config), tags=tags)
    logger.log_params(cfg.flat())
    logger.log_text(cfg.to_yaml(), schema.CONFIG_ARTIFACT)
    return logger


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from reports import schema
    from resnetx.errors import ConfigError
    from sweep.config.experiment import load_experiment
    from sweep.config.paths import runs_dir
    from sweep.data.load import load_dataset
    from sweep.training.checkpoint import CHECKPOINT_FILE, checkpoint_path
    from sweep.training.loop import setup_torch, train

    console = Console(stderr=False)
    cfg = load_experiment(args.config, args.sets)
    setup_torch(cfg.train)  # an absent device is refused before a run is opened in MLflow
    if args.resume and not checkpoint_path(args.resume).is_file():
        raise ConfigError("--resume", args.resume, f"no {CHECKPOINT_FILE} there")
    folder = runs_dir(args.runs_dir)
    data = load_dataset(cfg.data, root=folder / "data")
    console.print(f"[bold]{data.summary()}[/bold]  config {cfg.config_hash()}  model {cfg.model.canonical_hash()}")
    logger = None if args.no_mlflow else _open_run(args, cfg, folder)
    checkpoint_dir = args.checkpoint_dir or args.resume
    columns = (TextColumn("[bold]epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.description}"),
               TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("", total=cfg.train.epochs)

            def on_epoch(metrics: dict[str, float], _checkpoint: Path | None) -> None:
                line = (f"val_acc {metrics['val_acc']:.4f} val_loss {metrics['val_loss']:.3f} "
                        f"{metrics['images_per_s']:.0f} img/s")
                progress.update(task, completed=int(metrics["epoch"]), description=line)
                if logger is not None:
                    logger.log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=int(metrics["epoch"]))
                    logger.flush()  # one small batch per epoch: the UI shows progress live

            result = train(cfg, data=data, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir,
                           resume_from=args.resume, extend_epochs=args.extend_epochs)
    except BaseException as exc:
        if logger is not None:
            killed = isinstance(exc, KeyboardInterrupt)
            logger.set_tags({schema.TAG_STATUS: schema.STATUS_STOPPED if killed else schema.STATUS_FAILED})
            logger.end("KILLED" if killed else "FAILED")
        raise
    if logger is not None:
        # val_acc is already in the per-epoch series; the rest are the once-per-run FINAL_METRICS.
        final = {k: v for k, v in result.final.items() if k not in schema.EPOCH_METRICS}
        logger.log_metrics(final, step=len(result.history))
        logger.set_tags({schema.TAG_STATUS: result.status})
        logger.end("FINISHED" if result.status == schema.STATUS_FINISHED else "FAILED")
    _print_summary(console, cfg, result, None if logger is None else logger.run_id)
    if result.status != schema.STATUS_FINISHED:
        console.print(f"[red]training {result.status} at epoch {len(result.history)} "
                      "(non-finite loss); try a lower train.lr or set train.grad_clip[/red]")
        return 1
    return 0


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if key in ("params", "flops"):
        return f"{int(value):,}"
    if key.endswith("_acc"):
        return f"{value:.4f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _print_summary(console: Any, cfg: Any, result: Any, run_id: str | None) -> None:
    from rich.table import Table

    table = Table(title="resnetx train", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("status", result.status)
    table.add_row("epochs", str(len(result.history)))
    for key, value in result.final.items():
        table.add_row(key, _fmt(key, value))
    table.add_row("device", f"{result.info.get('device')} (amp {result.info.get('amp')})")
    if result.info.get("warm_start"):
        table.add_row("warm start", result.info["warm_start"])
    table.add_row("config hash", cfg.config_hash())
    if result.checkpoint is not None:
        table.add_row("checkpoint", str(result.checkpoint))
    if run_id is not None:
        table.add_row("mlflow run", run_id)
    console.print(table)
