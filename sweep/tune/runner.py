"""Run (or resume) one sweep: Ray Tune trials tracked in MLflow, reported at the end.

The MLflow store is prepared and the sweep's parent run opened *before* any trial starts; the
parent run records where Tune keeps its state (tag ``tune_path``), which is how
``resnetx sweep --resume`` finds the sweep to continue.
"""

from __future__ import annotations

import functools
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from reports import schema
from reports.pareto import format_objectives
from resnetx.errors import ConfigError
from sweep.config.overrides import flatten
from sweep.config.paths import resolve_tracking_uri, runs_dir
from sweep.config.settings import SweepSettings
from sweep.tracking.store import RunLogger, prepare_store, with_retry
from sweep.tune.preflight import check_can_start
from sweep.tune.pretrain import resolve_pretrained

TAG_TUNE_PATH = "tune_path"
# Options a resume takes from its own command line; everything else comes from the sweep's record.
RESUME_OWN_OPTIONS = ("resume", "address", "report", "runs_dir", "tracking_uri", "experiment")


@dataclass
class SweepOutcome:
    parent_run_id: str
    experiment: str
    tracking_uri: str
    tune_path: str
    statuses: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    elapsed_s: float = 0.0
    report: Any = None


@dataclass
class SweepPlan:
    """Everything resolved from the settings before Ray starts (errors surface here, not in trials)."""

    settings: SweepSettings
    space: Any
    objectives: list
    overrides: dict
    runs_folder: Path
    tracking_uri: str
    storage_path: str
    example: Any = None  # one validated trial config (the seed's first sample + --set): what trials share
    trainable_options: Any = None  # the trainable's options (TrainableEntry.options), made before Ray starts
    confirm: Any = None  # sweep.tune.confirm.ConfirmChoice of a confirm stage (settings.confirm_of)


def plan_sweep(settings: SweepSettings) -> SweepPlan:
    from reports.pareto import DEFAULT_OBJECTIVES, parse_objectives
    from search_spaces import load_space
    from sweep.config.experiment import ExperimentConfig
    from sweep.config.overrides import apply_sets, merge
    from sweep.tune.trainables import trainable_entry

    trainable_entry(settings.trainable)  # an unknown --trainable fails here, before Ray starts
    space = load_space(settings.space)
    objectives_text = settings.objectives or ",".join(getattr(space, "objectives", None) or []) or DEFAULT_OBJECTIVES
    objectives = parse_objectives(objectives_text)
    overrides = apply_sets({}, settings.sets)
    choice = None
    if settings.confirm_of:  # the confirm stage: the search sweep's candidates x seeds, the final recipe
        settings, space, overrides, choice = _confirm_stage(settings, space, objectives)
    check_scheduler_objectives(objectives, settings.scheduler)
    if settings.search == "grid" and not space.every_point():
        raise ConfigError("--search", "grid", f"space {space.name!r} has no grid axes; use optuna or random")
    example = ExperimentConfig(**merge(space.sample(random.Random(settings.seed)), overrides))  # bad --set fails here
    folder = runs_dir(settings.runs_dir)
    storage = settings.storage_path or str(folder / "ray")
    if "://" not in storage:
        storage = str(Path(storage).expanduser().resolve())
    plan = SweepPlan(settings, space, objectives, overrides, folder,
                     resolve_tracking_uri(settings.tracking_uri, folder), storage, example, confirm=choice)
    pretrain_jobs(plan, f"{storage}/check")  # a pretrain stage that cannot run fails here
    entry = trainable_entry(settings.trainable)
    if entry.options is not None:  # e.g. the replay's record, read and checked against the space
        plan.trainable_options = entry.options(plan)
    return plan


def _confirm_stage(settings: SweepSettings, space: Any, objectives: list) -> tuple[SweepSettings, Any, dict, Any]:
    """Settings, space, overrides and choice of a confirm stage: the search sweep's candidates by the
    space's ``confirm:`` rule (or the settings' own), R seeds each, the ``final:`` recipe < ``--set``."""
    from reports.runs import read_sweep_runs
    from sweep.config.overrides import apply_sets, merge
    from sweep.tune.confirm import ConfirmSpace, choose, confirm_points, final_overrides

    rule = settings.confirm_candidates or space.confirm.candidates
    seeds = settings.confirm_seeds or space.confirm.seeds
    noise = settings.confirm_noise if settings.confirm_noise is not None else space.confirm.noise
    uri = resolve_tracking_uri(settings.tracking_uri, runs_dir(settings.runs_dir))
    search = read_sweep_runs(uri, settings.experiment, settings.confirm_of)
    if search.parent is not None and search.parent.tags.get(schema.TAG_STAGE) == schema.STAGE_CONFIRM:
        raise ConfigError("--sweep", settings.confirm_of, "is a confirm stage; give the search sweep it confirmed")
    choice = choose(search.trials, objectives, rule, seeds, noise)
    points = confirm_points(choice)
    overrides = merge(final_overrides(space), apply_sets({}, settings.sets))
    narrowed = SweepSettings(**{**settings.to_dict(), "search": "grid", "num_samples": len(points),
                                "grid_order": "declared"})
    return narrowed, ConfirmSpace(space, points), overrides, choice


def own_folder(tune_path: str) -> str:
    """``<tune folder>-resnetx``: the sweep's own files (search counts, MO-ASHA rungs, pretrained weights).

    Beside Tune's folder, not in it: Tune keeps a staging copy of its experiment folder and uploads
    it over the storage at every checkpoint, so a file written straight into the folder is
    overwritten by its stale staged copy after a restore (measured: a resumed sweep's counts).
    """
    return f"{tune_path.rstrip('/')}-resnetx"


def pretrain_folder(tune_path: str) -> str:
    from sweep.tune.pretrain import PRETRAIN_FOLDER

    return f"{own_folder(tune_path)}/{PRETRAIN_FOLDER}"


def pretrain_jobs(plan: SweepPlan, tune_path: str) -> list:
    from sweep.tune.pretrain import plan_pretrain

    return plan_pretrain(plan.space, plan.overrides, pretrain_folder(tune_path), plan.settings.seed)


# What every trial reports (per epoch and once), so what a sweep can optimise.
REPORTED_METRICS = (*schema.EPOCH_METRICS, "best_val_acc", "params", "flops", "latency_ms", "train_time_s")


def check_scheduler_objectives(objectives: list, scheduler: str) -> None:
    """Objectives must be metrics trials report; ASHA needs one to maximise every epoch."""
    for objective in objectives:
        if objective.name == "test_acc":
            raise ConfigError("--objectives", objective.name, "the test split is for final evaluation, never for "
                              "choosing networks; use val_acc")
        if objective.name not in REPORTED_METRICS:
            known = ", ".join(REPORTED_METRICS)
            raise ConfigError("--objectives", objective.name, f"must be a metric every trial reports: {known}")
    if scheduler in ("asha", "moasha") and not any(o.maximize and o.name in schema.EPOCH_METRICS for o in objectives):
        raise ConfigError("--scheduler", scheduler, "stops trials on an accuracy-like objective; give one to "
                          "maximise (e.g. val_acc:max)")


def _open_parent(plan: SweepPlan, experiment_id: str, name: str) -> RunLogger:
    s = plan.settings
    tags = {schema.TAG_ROLE: schema.ROLE_SWEEP, schema.TAG_SPACE: plan.space.name, schema.TAG_SEARCH: s.search,
            schema.TAG_OBJECTIVES: format_objectives(plan.objectives),
            schema.TAG_SWEEP_SEED: str(s.seed), TAG_TUNE_PATH: f"{plan.storage_path.rstrip('/')}/{name}",
            schema.TAG_SETTINGS: json.dumps({k: v for k, v in s.to_dict().items() if k not in RESUME_OWN_OPTIONS})}
    tags.update(stage_tags(plan))
    fixed = hv_reference(plan)
    if fixed is not None:  # the report's hypervolume reference: fixed per space, stated where it came from
        tags[schema.TAG_HV_REFERENCE] = json.dumps({"objectives": format_objectives(plan.objectives),
                                                    "values": fixed[0], "source": fixed[1]})
    parent = RunLogger.start(plan.tracking_uri, experiment_id, name=name, tags=tags)
    params = {k: v for k, v in s.to_dict().items() if k not in ("resume",)}
    if s.scheduler != "none":  # the rung the scheduler uses, not "None" for auto (the settings tag keeps the rule)
        from sweep.tune.schedulers import resolved_grace_period

        params["grace_period"] = resolved_grace_period(s.grace_period, plan.example.train.warmup_epochs)
    if s.tracking_uri:  # a param is read by everyone who reads the runs: no database password in it
        params["tracking_uri"] = schema.shown_uri(s.tracking_uri)
    parent.log_params(flatten({"sweep": params}))
    return parent


def trial_image_sizes(plan: SweepPlan) -> list[int] | None:
    """The image sides the sweep's trials train at (and report FLOPs at), after ``--set``; None when
    they cannot be known before the trials run (a searched dataset, a size drawn from a range)."""
    from search_spaces.params import Constant

    example = plan.example.data
    if "image_size" in plan.overrides.get("data", {}) or plan.space.data_is_constant():
        return [example.effective_image_size]
    fields = {f.name: f for f in plan.space.fields}
    if "data.name" in fields and not isinstance(fields["data.name"], Constant):
        return None
    size = fields.get("data.image_size")
    if size is None or isinstance(size, Constant):
        return [example.effective_image_size]
    options = None if size.refs() else size.options({})
    if options is None:
        return None
    return sorted({example.model_copy(update={"image_size": side}).effective_image_size for side in options})


def hv_reference(plan: SweepPlan) -> tuple[list[float], str] | None:
    """The space's fixed hypervolume reference for this sweep's objectives, class count and image
    sizes (its FLOP bound is for the images the trials see, ``--set data.image_size`` included)."""
    sizes = trial_image_sizes(plan)
    if sizes is None and any(o.name == "flops" for o in plan.objectives):
        return None  # no fixed FLOP bound can be given; the report takes its reference from the trials
    return plan.space.reference_point(plan.objectives, num_classes=plan.example.model.num_classes,
                                      image_sizes=sizes)


def stage_tags(plan: SweepPlan) -> dict[str, str]:
    """``stage=confirm`` (and, on the parent, the search sweep) for a confirm stage; none for a search."""
    if plan.confirm is None:
        return {}
    return {schema.TAG_STAGE: schema.STAGE_CONFIRM, schema.TAG_CONFIRM_OF: str(plan.settings.confirm_of)}


def find_resumable(tracking_uri: str, experiment_id: str, experiment: str) -> Any:
    """The latest sweep parent run of the experiment, if it did not finish."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    runs = with_retry(lambda: client.search_runs([experiment_id], filter_string=f"tags.{schema.TAG_ROLE} = 'sweep'",
                                                 order_by=["attributes.start_time DESC"], max_results=1))
    if not runs:
        raise ConfigError("--resume", experiment, "no sweep to resume in this experiment")
    run = runs[0]
    if run.info.status == "FINISHED":
        raise ConfigError("--resume", experiment, f"the last sweep ({run.info.run_name}) already finished")
    return run


def recorded_settings(parent_run: Any, given: SweepSettings) -> SweepSettings:
    """The settings a resumed sweep runs with: the sweep's own (tag ``sweep_settings``), not the defaults.

    Without this a plain ``resnetx sweep --resume`` would rebuild the trainable from the
    default space and no ``--set`` overrides: trials resumed with another dataset bundle (the
    full dataset instead of ``data.subset``, or digits for a CIFAR sweep) or the wrong trainable.
    Only the options in RESUME_OWN_OPTIONS come from the resume's command line. Sweeps started
    before the tag existed resume with the given settings, as before.
    """
    text = parent_run.data.tags.get(schema.TAG_SETTINGS)
    if not text:
        return given
    own = {k: v for k, v in given.to_dict().items() if k in RESUME_OWN_OPTIONS}
    recorded = json.loads(text)
    recorded["sets"] = tuple(recorded.get("sets", ()))
    return SweepSettings(**{**recorded, **own})


def ignored_on_resume(given: SweepSettings, resumed: SweepSettings) -> list[str]:
    """The options of a ``--resume`` command line that the resumed sweep does not use: set away
    from their default and different from what the sweep recorded (``num_samples=200 (runs with 24)``)."""
    defaults = SweepSettings().to_dict()
    mine, used = given.to_dict(), resumed.to_dict()
    return [f"{k}={mine[k]!r} (runs with {used.get(k)!r})" for k in mine
            if k not in RESUME_OWN_OPTIONS and mine[k] != defaults.get(k) and mine[k] != used.get(k)]


def shared_data(plan: SweepPlan) -> Any:
    """The dataset bundle every trial trains on, loaded once on the driver; None where trials differ.

    Put in the object store once (``tune.with_parameters``), it is read zero-copy by every trial
    on a node. Image folders and spaces that search data settings load per trial.
    """
    from sweep.data.load import load_dataset
    from sweep.tune.trainables import trainable_entry

    if not trainable_entry(plan.settings.trainable).needs_data:
        return None
    data = plan.example.data  # the space's data settings with --set applied, validated once
    if data.name != "imagefolder" and plan.space.data_is_constant():
        # the runs folder's data/, as the trials' own (RESNETX_RUNS_DIR) and resnetx train's: the
        # driver once read ./resnetx-runs/data whatever --runs-dir said
        return load_dataset(data, root=plan.runs_folder / "data")
    return None


def _trainable(plan: SweepPlan, data: Any):
    from ray import tune

    from sweep.tune.trainables import trainable_entry

    entry = trainable_entry(plan.settings.trainable)
    function: Any = entry.function
    resources = {"cpu": plan.settings.cpus_per_trial, "gpu": plan.settings.gpus_per_trial}
    if entry.options is not None:
        function = tune.with_parameters(function, options=plan.trainable_options)
    if data is not None:
        function = tune.with_parameters(function, data=data)
    return tune.with_resources(function, resources)


def _pretrain_stage(plan: SweepPlan, tune_path: str, data: Any, parent: RunLogger, console: Console) -> None:
    """Train the networks ``train.weights: pretrained`` trials start from (nothing when the space has none)."""
    from sweep.tune.pretrain import run_pretrain_stage, stage_record

    jobs = pretrain_jobs(plan, tune_path)
    if not jobs:
        return
    results = run_pretrain_stage(jobs, data, plan.settings.cpus_per_trial, plan.settings.gpus_per_trial, console)
    if results:
        parent.log_text(stage_record(jobs, results), "pretrain.json")


def quiet_libraries() -> None:
    """Our progress lines replace Ray's status tables; keep library chatter out of the terminal.

    Output only: what changes how Tune behaves is set in :func:`tune_behaviour`.
    """
    import logging
    import os
    import warnings

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no status tables
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    for name in ("mlflow", "alembic", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*is an experimental feature.*")


def tune_behaviour() -> None:
    """Tune settings the sweep relies on, set before the Tuner is built (Tune reads them from the
    environment when its controller starts, so they cannot be Tuner arguments)."""
    import os

    # A stopped trial that does not stop by itself (a hang in C code) is killed after 20 s, so
    # the per-trial time limit frees its slot.
    os.environ.setdefault("TUNE_FORCE_TRIAL_CLEANUP_S", "20")
    # A trial that fails without training (out of memory, invalid config) reports its status but
    # no accuracy; Tune's strict metric check would then end the whole sweep under a scheduler
    # (ASHA and MO-ASHA skip results without their metrics).
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Two repairs of Tune's own fault handling (a double failure report, a checkpoint deleted
    # before the state naming its successor was saved): sweep/tune/ray_fixes.py says why.
    from sweep.tune import ray_fixes

    ray_fixes.install()


def execute_sweep(settings: SweepSettings, console: Console | None = None) -> SweepOutcome:
    """Plan, start Ray, run or resume the Tuner, and end every MLflow run it opened."""
    from sweep.tune.cluster import check_shared_storage, init_ray

    quiet_libraries()
    console = console or Console()
    parent_run = None
    if settings.resume:  # the sweep's own settings are recorded in the store: planned once, from them
        # The store comes from options a resume takes from its own command line (RESUME_OWN_OPTIONS).
        tracking_uri = resolve_tracking_uri(settings.tracking_uri, runs_dir(settings.runs_dir))
        experiment_id = prepare_store(tracking_uri, settings.experiment)
        parent_run = find_resumable(tracking_uri, experiment_id, settings.experiment)
        plan = plan_sweep(recorded_settings(parent_run, settings))
        ignored = ignored_on_resume(settings, plan.settings)
        if ignored:
            console.print(f"[yellow]--resume continues the sweep as it was recorded; ignored: {', '.join(ignored)} "
                          f"(only {', '.join(RESUME_OWN_OPTIONS[1:])} come from this command line)[/yellow]")
    else:
        plan = plan_sweep(settings)
    # What a sweep needs is checked before Ray starts and before any run (or a new store) exists:
    check_can_start(plan)  # weights present or downloadable, resources that exist
    data = shared_data(plan)  # the dataset itself: a missing one fails here
    if not settings.resume:
        experiment_id = prepare_store(plan.tracking_uri, settings.experiment, runs_folder=plan.runs_folder)
    started_ray = init_ray(settings.address, env={"RESNETX_RUNS_DIR": str(plan.runs_folder)})
    try:
        check_shared_storage(plan.storage_path)
        return _run(plan, experiment_id, console, data, parent_run)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _resumed(plan: SweepPlan, experiment_id: str, console: Console, parent_run: Any) -> tuple[RunLogger, str, Any]:
    """The parent run, Tune folder and Tuner factory of a sweep to resume."""
    from ray import tune

    from sweep.tune.ray_fixes import unreadable_state

    parent_run = parent_run or find_resumable(plan.tracking_uri, experiment_id, plan.settings.experiment)
    tune_path = parent_run.data.tags[TAG_TUNE_PATH]
    if not tune.Tuner.can_restore(tune_path):
        raise ConfigError("--resume", plan.settings.experiment, f"no Tune state at {tune_path}")
    cut_short = unreadable_state(tune_path)
    if cut_short is not None:  # Tune would start the sweep over from nothing
        raise ConfigError("--resume", cut_short, "is cut short (its driver was killed while writing it) and Tune "
                                                 "cannot restore the sweep from it; start a new sweep")
    parent = RunLogger.attach(plan.tracking_uri, parent_run.info.run_id)
    console.print(f"resuming sweep {parent_run.info.run_name} from {tune_path}")

    def build(trainable: Any) -> Any:
        return tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True, resume_errored=True)

    return parent, tune_path, build


def default_sweep_name(now: float | None = None) -> str:
    """``sweep-YYYYmmdd-HHMMSS-xxxxxx``: the local start time (``now``, default the present) and six
    random hex digits, so two sweeps started in the same second (``for s in 0 1; do resnetx sweep
    --seed $s & done``) get folders of their own. Resume needs no pattern: it reads the folder
    from the parent run's ``tune_path`` tag."""
    return f"{time.strftime('sweep-%Y%m%d-%H%M%S', time.localtime(now))}-{secrets.token_hex(3)}"


def _started(plan: SweepPlan, experiment_id: str, console: Console) -> tuple[RunLogger, str, Any]:
    """The parent run, Tune folder and Tuner factory of a new sweep."""
    from ray import tune

    from sweep.search.proposers import make_proposer
    from sweep.tune.callbacks import MlflowTrialCallback
    from sweep.tune.cluster import cluster_slots
    from sweep.tune.progress import SweepProgress
    from sweep.tune.searcher import ResNetXSearcher

    settings, objectives = plan.settings, plan.objectives
    name = settings.name or default_sweep_name()
    tune_path = f"{plan.storage_path.rstrip('/')}/{name}"
    proposer = make_proposer(settings.search, plan.space, objectives, settings.seed, settings.num_samples,
                             settings.grid_order)
    prepare = functools.partial(resolve_pretrained, pretrain=plan.space.pretrain,
                                folder=pretrain_folder(tune_path), sweep_seed=settings.seed)
    searcher = ResNetXSearcher(plan.space, proposer, objectives, settings.seed, overrides=plan.overrides,
                               prepare=prepare, stats_path=search_stats_path(tune_path))
    parent = _open_parent(plan, experiment_id, name)  # last: nothing after it can fail and leave it RUNNING
    tags = {schema.TAG_SPACE: plan.space.name, schema.TAG_SEARCH: settings.search}
    if plan.confirm is not None:
        tags[schema.TAG_STAGE] = schema.STAGE_CONFIRM
    callbacks = [MlflowTrialCallback(plan.tracking_uri, experiment_id, parent.run_id, tags),
                 SweepProgress(objectives, settings.num_samples, settings.time_budget_s)]
    console.print(f"sweep {name}: space {plan.space.name}, search {settings.search}, "
                  f"{settings.num_samples} trials, objectives {format_objectives(objectives)}")

    def build(trainable: Any) -> Any:
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=_scheduler(settings, objectives, tune_path, plan.example),
                num_samples=settings.num_samples,
                max_concurrent_trials=settings.max_concurrent or cluster_slots(settings.cpus_per_trial,
                                                                               settings.gpus_per_trial),
                time_budget_s=settings.time_budget_s, reuse_actors=True),
            run_config=tune.RunConfig(
                name=name, storage_path=plan.storage_path, callbacks=callbacks, verbose=0,
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )

    return parent, tune_path, build


def _run(plan: SweepPlan, experiment_id: str, console: Console, data: Any, parent_run: Any = None) -> SweepOutcome:
    from sweep.tune.interrupts import interrupted, sigint_restored

    settings = plan.settings
    started = time.monotonic()
    if settings.resume:
        parent, tune_path, build = _resumed(plan, experiment_id, console, parent_run)
    else:
        parent, tune_path, build = _started(plan, experiment_id, console)
    try:
        _pretrain_stage(plan, tune_path, data, parent, console)
        tune_behaviour()
        with sigint_restored():  # a notebook keeps its own Ctrl-C after the sweep
            results = build(_trainable(plan, data)).fit()
    except BaseException:
        parent.end("FAILED")  # never left RUNNING; a FAILED sweep can still be resumed
        raise
    outcome = SweepOutcome(parent.run_id, settings.experiment, plan.tracking_uri, tune_path,
                           elapsed_s=time.monotonic() - started)
    outcome.interrupted = interrupted()
    states = [_result_status(r, outcome.interrupted) for r in results]
    outcome.statuses = {s: states.count(s) for s in sorted(set(states))}
    parent.log_metrics({"trials": len(results), "elapsed_s": outcome.elapsed_s})
    _record_search_stats(plan, tune_path, parent, len(results), console)
    parent.end("KILLED" if outcome.interrupted else "FINISHED")
    if settings.report and not outcome.interrupted:
        try:
            outcome.report = _report(plan, outcome, console)
        except ConfigError as exc:  # the sweep itself is done and recorded; say why there is no report
            console.print(f"no report: {exc} (rerun it with  resnetx report --sweep {parent.run_id})")
    return outcome


def _result_status(result: Any, interrupted: bool) -> str:
    """A trial's status as its MLflow run records it: an errored trial is failed (its last
    report may still say running), one stopped by ASHA or the time limit is stopped_early."""
    from sweep.search.statuses import trial_epochs, trial_status

    last = result.metrics or {}
    if interrupted and result.error is None:
        return last.get("status", "failed")
    return trial_status(last, trial_epochs(result.config), result.error is not None)


def search_stats_path(tune_path: str) -> str | None:
    """Where the searcher keeps its counts (None for object-store storage: nothing is recorded)."""
    if "://" in tune_path:
        return None
    Path(own_folder(tune_path)).mkdir(parents=True, exist_ok=True)
    return f"{own_folder(tune_path)}/search-stats.json"


def _record_search_stats(plan: SweepPlan, tune_path: str, parent: RunLogger, trials: int, console: Console) -> None:
    """Record what the searcher did with its proposals on the parent run, and say why a sweep ran
    fewer trials than asked for (a used-up space, a grid smaller than --num-samples)."""
    path = search_stats_path(tune_path)
    if path is None or not Path(path).is_file():
        return
    stats = json.loads(Path(path).read_text())
    parent.log_metrics({f"search_{k}": v for k, v in stats.items() if isinstance(v, (int, float))})
    if stats.get("stop_reason"):
        parent.set_tags({"search_stop_reason": stats["stop_reason"]})
    if trials < plan.settings.num_samples:
        reason = stats.get("stop_reason") or "the time budget or an interruption ended it"
        console.print(f"{trials} of {plan.settings.num_samples} trials ran: {reason} "
                      f"({stats.get('proposed', 0)} proposals: {stats.get('trained', 0)} trained, "
                      f"{stats.get('infeasible', 0)} over budget or invalid, {stats.get('duplicates', 0)} duplicates)")


def _scheduler(settings: SweepSettings, objectives: list, tune_path: str, example: Any) -> Any:
    """Early stopping: ASHA on the accuracy objective, MO-ASHA on all of them, or none."""
    from sweep.tune.schedulers import make_scheduler

    state = None if "://" in tune_path else f"{own_folder(tune_path)}/moasha-rungs.json"  # no file on object stores
    return make_scheduler(settings.scheduler, objectives, settings.trial_timeout_s, settings.grace_period,
                          settings.reduction_factor, state_path=state, rung_metric=settings.rung_metric,
                          warmup_epochs=example.train.warmup_epochs)  # grace None: after the trials' warm-up


def _report(plan: SweepPlan, outcome: SweepOutcome, console: Console) -> Any:
    from reports.report import build_report

    out = plan.runs_folder / "reports" / outcome.parent_run_id
    return build_report(plan.tracking_uri, plan.settings.experiment, out, objectives=format_objectives(plan.objectives),
                        sweep_run_id=outcome.parent_run_id)
