"""``SweepSettings``: every option of ``resnetx sweep``, validated once before Ray starts."""

from __future__ import annotations

from typing import Literal

from pydantic import StrictBool, StrictInt, model_validator

from resnetx.config import StrictConfig
from resnetx.errors import ConfigError
from sweep.config.paths import DEFAULT_EXPERIMENT

SEARCHES = ("optuna", "random", "grid")
SCHEDULERS = ("asha", "moasha", "none")
GRID_ORDERS = ("declared", "shuffled")
# What an early-stopping rung ranks by in place of the accuracy objective: "accuracy" (that
# objective at the rung's epoch) or "tse" (the sum of the training losses so far, minimised);
# "auto" takes the scheduler's measured default below.
RUNG_METRICS = ("auto", "accuracy", "tse")
# Chosen from bench/results/rung-metric (docs/benchmarks.md, "Rung metric"): with MO-ASHA, TSE
# reached 95% of the true front with less compute on both records; with ASHA it was better on one
# record and worse on the other, so ASHA keeps the accuracy it has always ranked by.
DEFAULT_RUNG_METRIC = {"asha": "accuracy", "moasha": "tse"}
# Settings of the confirm stage: options of `resnetx confirm` (--sweep, --seeds, --candidates, --noise),
# not of `resnetx sweep`
CONFIRM_FIELDS = ("confirm_of", "confirm_seeds", "confirm_candidates", "confirm_noise")


class SweepSettings(StrictConfig):
    """Options of one sweep. Defaults run the ``quick`` space locally on offline ``digits``."""

    space: str = "quick"
    search: Literal["optuna", "random", "grid"] = "optuna"
    # grid: walk the points as the space declares them, or in one fixed shuffled order (the same for
    # every --seed, so that `--num-samples N --seed S` retrains the same N networks with new seeds)
    grid_order: Literal["declared", "shuffled"] = "declared"
    objectives: str | None = None  # default: the space's objectives, else val_acc:max,params:min
    # No early stopping by default: on both recorded benchmarks no ASHA/MO-ASHA setting reached 95% of the
    # true front with a third of random search's compute, and each ends below it (docs/benchmarks.md,
    # "Warm-up-aware rungs and the default strategy"); TPE alone was >= random from 25% on one record
    scheduler: Literal["asha", "moasha", "none"] = "none"
    # asha/moasha: the first rung's epoch; None ("auto"): the first epoch after the trials'
    # train.warmup_epochs (sweep.tune.schedulers.default_grace_period); an explicit value wins
    grace_period: StrictInt | None = None
    # asha/moasha: what a rung ranks by in place of the accuracy objective (sweep.tune.schedulers.RUNG_METRICS)
    rung_metric: Literal["auto", "accuracy", "tse"] = "auto"
    reduction_factor: float = 2.0  # asha/moasha: keep 1/reduction_factor of each rung (moasha: and its front)
    num_samples: StrictInt = 12
    max_concurrent: StrictInt | None = None  # default: what the cluster's CPUs/GPUs allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    time_budget_s: float | None = None
    trial_timeout_s: float | None = None
    max_failures: StrictInt = 2
    seed: StrictInt = 0
    experiment: str = DEFAULT_EXPERIMENT
    name: str | None = None  # Tune experiment name; default sweep-<timestamp>
    runs_dir: str | None = None
    tracking_uri: str | None = None
    storage_path: str | None = None
    address: str | None = None
    resume: StrictBool = False
    sets: tuple[str, ...] = ()  # --set overrides applied to every trial config
    report: StrictBool = True
    # What a trial runs: a name in sweep.tune.trainables.TRAINABLES (resnetx trains, replay reports a
    # recorded benchmark's epochs; register_trainable adds more), checked against the registry when
    # the sweep is planned, so that a registered name is usable here
    trainable: str = "resnetx"
    record: str | None = None  # replay: a `resnetx record` file
    # The confirm stage (resnetx confirm): the search sweep's parent run id it retrains candidates
    # of, and overrides of the space's confirm: section (None: the space's)
    confirm_of: str | None = None
    confirm_seeds: StrictInt | None = None
    confirm_candidates: str | None = None  # checked with the space (search_spaces.schema.check_candidate_rule)
    confirm_noise: float | None = None

    @model_validator(mode="after")
    def _check(self) -> SweepSettings:
        if self.num_samples < 1:
            raise ConfigError("num_samples", self.num_samples, "must be >= 1")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError("max_concurrent", self.max_concurrent, "must be >= 1")
        if self.cpus_per_trial <= 0:
            raise ConfigError("cpus_per_trial", self.cpus_per_trial, "must be > 0")
        if self.gpus_per_trial < 0:
            raise ConfigError("gpus_per_trial", self.gpus_per_trial, "must be >= 0 (0.25 shares a GPU)")
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise ConfigError("gpus_per_trial", self.gpus_per_trial, "must be a fraction <= 1 or a whole number")
        for field in ("time_budget_s", "trial_timeout_s"):
            value = getattr(self, field)
            if value is not None and value <= 0:
                raise ConfigError(field, value, "must be > 0 seconds")
        if self.grace_period is not None and self.grace_period < 1:
            raise ConfigError("grace_period", self.grace_period, "must be >= 1 epoch")
        if self.reduction_factor <= 1:
            raise ConfigError("reduction_factor", self.reduction_factor, "must be > 1 (2 keeps half of each rung)")
        if self.max_failures < 0:
            raise ConfigError("max_failures", self.max_failures, "must be >= 0")
        if self.rung_metric != "auto" and self.scheduler == "none":
            raise ConfigError("rung_metric", self.rung_metric, "applies to --scheduler asha or moasha only")
        if self.grid_order != "declared" and self.search != "grid":
            raise ConfigError("grid_order", self.grid_order, "applies to --search grid only")
        if self.trainable == "replay" and not self.record:
            raise ConfigError("trainable", "replay", "needs --record FILE (a `resnetx record` file)")
        if self.record and self.trainable != "replay":
            raise ConfigError("record", self.record, "is read only by --trainable replay")
        if self.confirm_seeds is not None and self.confirm_seeds < 1:
            raise ConfigError("confirm_seeds", self.confirm_seeds, "must be >= 1")
        if self.confirm_noise is not None and not self.confirm_noise >= 0:
            raise ConfigError("confirm_noise", self.confirm_noise, "must be >= 0 (an accuracy difference)")
        if self.confirm_of is None and any(v is not None for v in (self.confirm_seeds, self.confirm_candidates,
                                                                     self.confirm_noise)):
            raise ConfigError("confirm_of", None, "confirm options apply to resnetx confirm only")
        if not self.experiment.strip():
            raise ConfigError("experiment", self.experiment, "must be a non-empty name")
        return self
