"""The Python API: ``run_sweep`` and ``train`` for notebooks and scripts (``from sweep import ...``).

These are the implementations the console script wraps: ``resnetx sweep`` builds its settings
with :func:`sweep_settings` and runs :func:`run_settings`; ``resnetx train`` calls :func:`train`.
So a notebook and the command line validate the same settings (``SweepSettings``, with its one
set of defaults), print the same progress lines and write the same MLflow runs.

Differences from the CLI are only the ones a notebook needs: errors are raised
(:class:`~resnetx.errors.ConfigError`, one line) instead of turned into exit codes, overrides
may be a dict (``{"train.epochs": 2}``) as well as ``--set`` strings, and the results come
back as objects (``.trials()`` is a pandas DataFrame).

Heavy libraries (torch, Ray, MLflow) are imported inside the functions: ``import sweep`` and
``from sweep import run_sweep`` stay instant, and the training layer's "no Ray, no MLflow"
contract (tests/test_layers.py) is not touched by this module being importable.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from resnetx.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from sweep.config.experiment import ExperimentConfig
    from sweep.config.settings import SweepSettings
    from sweep.training.loop import TrainResult
    from sweep.tune.runner import SweepOutcome

    Overrides = Mapping[str, Any] | Sequence[str] | None  # {"train.epochs": 2} or ["train.epochs=2"]
    ConfigSpec = str | Path | Mapping[str, Any] | ExperimentConfig  # YAML path, built-in name, mapping, config

__all__ = ["SweepResult", "TrainRun", "confirm", "confirm_settings", "experiment_config", "override_sets",
           "run_settings", "run_sweep", "sweep_settings", "train"]


# -- overrides --------------------------------------------------------------------------
def _set_value(value: Any) -> str:
    """The text after ``key=`` that ``sweep.config.overrides.parse_set`` reads back as ``value``.

    Strings are written as they are when YAML reads them back unchanged (``digits``), quoted
    otherwise (``"true"``, ``"3"``); everything else as JSON, which YAML reads (``[2, 2]``, ``0.001``).
    That keeps a dict override identical to the ``--set`` string a user would type, which is
    also what the sweep's parent run records (and what ``--resume`` reuses).
    """
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain and value.strip() == value and value else json.dumps(value)
    if isinstance(value, tuple):
        value = list(value)
    try:
        return json.dumps(value)
    except TypeError:
        raise ConfigError("overrides", value, "values must be numbers, strings, booleans, None or lists") from None


def override_sets(overrides: Overrides) -> list[str]:
    """``{"train.epochs": 2}`` (or nested ``{"train": {"epochs": 2}}``) -> ``["train.epochs=2"]``.

    A list of ``key=value`` strings (the CLI's ``--set`` items) is taken as it is. Values are
    read back as ``--set`` reads them, so text that looks like a number (``"3"``, ``"1e-3"``)
    becomes that number, exactly as on the command line.
    """
    from sweep.config.overrides import flatten

    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        if not all(isinstance(k, str) and k for k in overrides):
            raise ConfigError("overrides", dict(overrides), "keys must be names such as 'train.epochs'")
        return [f"{key}={_set_value(value)}" for key, value in flatten(overrides).items()]
    if isinstance(overrides, (str, bytes)) or not all(isinstance(item, str) for item in overrides):
        raise ConfigError("overrides", overrides, "must be a mapping such as {'train.epochs': 2} "
                          "or a list of 'key=value' strings")
    return list(overrides)


# -- sweeps -----------------------------------------------------------------------------
def sweep_settings(overrides: Overrides = None, **options: Any) -> SweepSettings:
    """Validated ``SweepSettings`` from keyword options (the names of ``resnetx sweep``'s options).

    Options left out take ``SweepSettings``' defaults, the one place they are written (the CLI's
    argparse defaults are read from there too). ``overrides`` are appended to ``sets``.
    """
    from sweep.config.settings import SweepSettings

    known = SweepSettings.model_fields
    for name, value in options.items():
        if name not in known:
            raise ConfigError(name, value, f"is not a sweep setting; known: {', '.join(known)}")
        if isinstance(value, os.PathLike):  # runs_dir=Path("runs"): the settings hold paths as text
            options[name] = os.fspath(value)
    sets = options.pop("sets", ())
    if isinstance(sets, str):
        raise ConfigError("sets", sets, "must be a list of 'key=value' strings")
    options["sets"] = (*override_sets(list(sets)), *override_sets(overrides))
    return SweepSettings(**options)


@dataclass
class SweepResult:
    """What a sweep left behind: where it is in MLflow, how its trials ended, its report."""

    parent_run_id: str
    tracking_uri: str
    experiment: str
    statuses: dict[str, int]  # status -> number of trials, e.g. {"finished": 7, "diverged": 1}
    report_files: dict[str, Path] = field(default_factory=dict)  # index_html, pareto_csv, pareto_png, ...
    knee_run_id: str | None = None  # the report's knee point (None without a report)
    interrupted: bool = False
    elapsed_s: float = 0.0
    tune_path: str = ""
    outcome: Any = field(default=None, repr=False)  # the runner's SweepOutcome, report object included

    @property
    def report_dir(self) -> Path | None:
        """The report folder (None when the sweep ran with ``report=False`` or was interrupted)."""
        first = next(iter(self.report_files.values()), None)
        return first.parent if first is not None else None

    def trials(self, objectives: str | None = None) -> pd.DataFrame:
        """One row per trial, read back from MLflow: :func:`reports.load_sweep` of this sweep."""
        from reports.frames import load_sweep

        return load_sweep(tracking_uri=self.tracking_uri, experiment=self.experiment, sweep=self.parent_run_id,
                          objectives=objectives)

    @classmethod
    def from_outcome(cls, outcome: SweepOutcome) -> SweepResult:
        report = outcome.report
        return cls(parent_run_id=outcome.parent_run_id, tracking_uri=outcome.tracking_uri,
                   experiment=outcome.experiment, statuses=dict(outcome.statuses),
                   report_files=dict(report.files) if report is not None else {},
                   knee_run_id=report.knee_run_id if report is not None else None,
                   interrupted=outcome.interrupted, elapsed_s=outcome.elapsed_s, tune_path=outcome.tune_path,
                   outcome=outcome)


def run_settings(settings: SweepSettings, console: Console | None = None, summary: bool = True) -> SweepResult:
    """Run (or resume) the sweep ``settings`` describe; what ``resnetx sweep`` does, returned as an object.

    Progress lines and the closing summary go to ``console`` (a rich Console; the default one
    renders into a Jupyter cell when run there). Ray's own status tables stay off, as in the CLI.
    """
    from rich.console import Console

    from sweep.config.paths import configure_environment
    from sweep.tune.runner import execute_sweep

    configure_environment()
    console = console or Console()
    outcome = execute_sweep(settings, console)
    if summary:
        from sweep.tune.summary import print_summary

        print_summary(outcome, console)
    return SweepResult.from_outcome(outcome)


def run_sweep(space: str | None = None, *, overrides: Overrides = None, console: Console | None = None,
              summary: bool = True, **options: Any) -> SweepResult:
    """Run a Ray Tune sweep over a search space, tracked in MLflow, with the Pareto report at the end.

    ``space``: a built-in space name or YAML file (default: ``SweepSettings``' default, ``quick``).
    ``overrides``: applied to every trial's config, e.g. ``{"train.epochs": 2, "data.subset": 400}``
    (the CLI's ``--set``). ``options``: every other option of ``resnetx sweep`` under its
    ``SweepSettings`` name: ``num_samples``, ``search``, ``objectives``, ``scheduler``,
    ``max_concurrent``, ``cpus_per_trial``, ``gpus_per_trial``, ``time_budget_s``,
    ``trial_timeout_s``, ``max_failures``, ``seed``, ``experiment``, ``name``, ``runs_dir``,
    ``tracking_uri``, ``storage_path``, ``address``, ``resume``, ``report``, ...

    Everything is validated before Ray starts; a bad value raises a one-line ``ConfigError``.
    Returns a :class:`SweepResult`; ``result.trials()`` is the trials DataFrame.
    """
    if space is not None:
        options["space"] = space
    return run_settings(sweep_settings(overrides, **options), console, summary)


# -- one training run -------------------------------------------------------------------
def confirm_settings(sweep: str | None = None, *, overrides: Overrides = None, seeds: int | None = None,
                     candidates: str | None = None, noise: float | None = None, **options: Any) -> SweepSettings:
    """Validated settings of the confirm stage of a search sweep (its parent run id; default the
    experiment's latest search sweep): its space, objectives and trainable, the space's ``confirm:``
    rule unless ``seeds``/``candidates``/``noise`` say otherwise, and ``options`` for the rest
    (``runs_dir``, ``experiment``, ``max_concurrent``, ``gpus_per_trial``, ``name``, ...)."""
    from sweep.config.paths import resolve_tracking_uri, runs_dir
    from sweep.tune.confirm import search_sweep

    uri = resolve_tracking_uri(options.get("tracking_uri"), runs_dir(options.get("runs_dir")))
    run_id, inherited = search_sweep(uri, options.get("experiment", "resnetx"), sweep)
    return sweep_settings(overrides, **{**inherited, **options, "confirm_of": run_id, "confirm_seeds": seeds,
                                        "confirm_candidates": candidates, "confirm_noise": noise})


def confirm(sweep: str | None = None, *, overrides: Overrides = None, seeds: int | None = None,
            candidates: str | None = None, noise: float | None = None, console: Console | None = None,
            summary: bool = True, **options: Any) -> SweepResult:
    """Retrain a search sweep's candidates at full fidelity with several seeds (``resnetx confirm``).

    The candidates are the search sweep's front (or ``top-K``, or ``within-noise``: every network
    within ``noise`` of the front), per the space's ``confirm:`` section; each trains with the
    space's ``final:`` recipe (then ``overrides``) and ``seeds`` seeds, one MLflow run each tagged
    ``stage=confirm``, under a parent run of its own. The report's "Confirmed front" gives each
    network's mean with a 95% t interval and its share of bootstrap resamplings on the front;
    ``resnetx export --front`` of this stage exports the confirmed front. Resumable with
    ``run_sweep(resume=True)``."""
    return run_settings(confirm_settings(sweep, overrides=overrides, seeds=seeds, candidates=candidates,
                                         noise=noise, **options), console, summary)


@dataclass
class TrainRun:
    """One ``train`` call: the config it trained, its result, and its MLflow run (if logged)."""

    config: ExperimentConfig
    result: TrainResult
    run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None

    @property
    def status(self) -> str:
        """``finished`` or ``diverged`` (non-finite loss)."""
        return self.result.status

    @property
    def metrics(self) -> dict[str, float]:
        """The once-per-run numbers: best_val_acc, val_acc, params, flops, latency_ms, train_time_s, ..."""
        return dict(self.result.final)

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics, one dict per epoch (``pd.DataFrame(run.history)`` for a table)."""
        return [dict(h) for h in self.result.history]

    @property
    def checkpoint(self) -> Path | None:
        return self.result.checkpoint


_FILLED_MODEL_FIELDS = ("in_channels", "num_classes")


def experiment_config(config: ConfigSpec, overrides: Overrides = None) -> ExperimentConfig:
    """The validated experiment config of ``config`` with ``overrides`` applied (defaults < config < overrides).

    ``config``: an experiment YAML path, a built-in model name (``tiny``, ``resnet18``, ...), a
    mapping (sections ``model``/``data``/``train``, or model fields alone) or an
    ``ExperimentConfig``. Override keys without a section (``fold``) mean the model, as on the CLI.
    """
    from sweep.config.datasets import dataset_meta
    from sweep.config.experiment import IGNORED_KEYS, SECTIONS, ExperimentConfig, load_experiment
    from sweep.config.overrides import apply_sets

    sets = override_sets(overrides)
    if isinstance(config, (str, Path)):
        return load_experiment(str(config), sets)
    if isinstance(config, ExperimentConfig):
        if not sets:
            return config
        raw = config.to_dict()
        # in_channels/num_classes were filled from the dataset: let a data.name override fill them again
        meta = dataset_meta(config.data.name, config.data.root)
        for key in _FILLED_MODEL_FIELDS:
            if raw["model"].get(key) == getattr(meta, key):
                raw["model"].pop(key)
    elif isinstance(config, Mapping):
        raw = dict(config) if any(k in config for k in (*SECTIONS, *IGNORED_KEYS)) else {"model": dict(config)}
    else:
        raise ConfigError("config", type(config).__name__, "must be an experiment YAML path, a built-in model name, "
                          "a mapping or an ExperimentConfig")
    sections = (*SECTIONS, *IGNORED_KEYS)
    sets = [s if s.split("=", 1)[0].split(".", 1)[0] in sections else f"model.{s}" for s in sets]
    return ExperimentConfig(**apply_sets(raw, sets))


def _run_name(config: ConfigSpec, cfg: ExperimentConfig) -> str:
    if isinstance(config, (str, Path)):
        path = Path(config)
        return f"train-{path.stem if path.suffix else config}"
    return f"train-{cfg.config_hash()}"


def _open_run(cfg: ExperimentConfig, name: str, uri: str, experiment: str, folder: Path) -> Any:
    """Create the store/experiment and start a role=train run (its tags, params and config.yaml).

    ``folder``: the runs folder, where a new experiment in a database URI keeps its artifacts
    (MLflow's own default is ./mlruns in whatever folder the command started in).
    """
    from reports import schema
    from sweep.tracking.store import open_config_run, prepare_store

    experiment_id = prepare_store(uri, experiment, runs_folder=folder)
    return open_config_run(uri, experiment_id, cfg, name=name, role=schema.ROLE_TRAIN)


def train(config: ConfigSpec, overrides: Overrides = None, *, runs_dir: str | Path | None = None,
          tracking_uri: str | None = None, experiment: str | None = None, mlflow: bool = True,
          checkpoint_dir: str | Path | None = None, resume_from: str | Path | None = None,
          extend_epochs: bool = False, console: Console | None = None, verbose: bool = True) -> TrainRun:
    """Train one config without Ray, log it to MLflow as ``resnetx train`` does, return its result.

    ``config``/``overrides``: see :func:`experiment_config`. The run goes to ``tracking_uri``
    (default: the sqlite store under ``runs_dir``, itself ``$RESNETX_RUNS_DIR`` or
    ``./resnetx-runs``) with ``tags.role = "train"``; ``mlflow=False`` logs nothing. Datasets
    are cached under ``<runs_dir>/data``. ``checkpoint_dir`` receives ``checkpoint.pt``;
    ``resume_from`` continues from one (another config is refused unless only ``train.epochs``
    grows and ``extend_epochs`` is set). Like the CLI it applies ``train.num_threads`` and the
    CUDA settings process-wide (``sweep.training.loop.setup_torch``). A run that diverges is
    returned with ``status == "diverged"`` (its MLflow run ends FAILED), not raised.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from reports import schema
    from sweep.config.paths import DEFAULT_EXPERIMENT, configure_environment, resolve_tracking_uri
    from sweep.config.paths import runs_dir as resolve_runs_dir
    from sweep.data.load import load_dataset
    from sweep.training.checkpoint import CHECKPOINT_FILE, checkpoint_path
    from sweep.training.loop import data_plan, setup_torch
    from sweep.training.loop import train as train_loop

    configure_environment()
    console = console or Console(quiet=not verbose)
    cfg = experiment_config(config, overrides)
    setup_torch(cfg.train)  # an absent device is refused before a run is opened in MLflow
    if resume_from is not None and not checkpoint_path(resume_from).is_file():
        raise ConfigError("--resume", str(resume_from), f"no {CHECKPOINT_FILE} there")
    folder = resolve_runs_dir(runs_dir)
    uri = resolve_tracking_uri(tracking_uri, folder) if mlflow else None
    experiment = experiment or DEFAULT_EXPERIMENT
    data = load_dataset(cfg.data, root=folder / "data")
    console.print(f"[bold]{data.summary()}[/bold]  config {cfg.config_hash()}  model {cfg.model.canonical_hash()}")
    logger = _open_run(cfg, _run_name(config, cfg), uri, experiment, folder) if uri is not None else None
    if logger is not None:
        logger.log_params({schema.PARAM_DATA_PATH: data_plan(cfg, data).path})
    # resuming writes its checkpoints back where it read them: the folder, also when given the file
    checkpoints = checkpoint_dir if checkpoint_dir is not None else (
        checkpoint_path(resume_from).parent if resume_from is not None else None)
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

            result = train_loop(cfg, data=data, on_epoch=on_epoch, checkpoint_dir=checkpoints,
                                resume_from=resume_from, extend_epochs=extend_epochs)
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
    run = TrainRun(cfg, result, None if logger is None else logger.run_id, uri, experiment if uri else None)
    _print_train_summary(console, run)
    if result.status != schema.STATUS_FINISHED:
        console.print(f"[red]training {result.status} at epoch {len(result.history)} "
                      "(non-finite loss); try a lower train.lr or set train.grad_clip[/red]")
    return run


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if key in ("params", "flops"):
        return f"{int(value):,}"
    if key.endswith("_acc"):
        return f"{value:.4f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _print_train_summary(console: Console, run: TrainRun) -> None:
    from rich.table import Table

    result = run.result
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
    table.add_row("config hash", run.config.config_hash())
    if result.checkpoint is not None:
        table.add_row("checkpoint", str(result.checkpoint))
    if run.run_id is not None:
        table.add_row("mlflow run", run.run_id)
    console.print(table)
