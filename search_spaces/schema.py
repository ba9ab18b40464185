"""The YAML schema of a space file and its compilation into an ordered list of fields.

A space file has three sections that mirror the experiment config a sample becomes
(``model``, ``data``, ``train``), plus metadata (name, description, default objectives), the
budget checked before training, and the input size the FLOP budget is measured at. Keys are
checked against explicit lists so a typo is an error, not a silently ignored setting.

Compilation turns every entry into a bound :class:`~search_spaces.params.Param` and orders
them so each field comes after the fields its bounds refer to (define-by-run order), keeping
the file's order wherever dependencies allow so grids and Optuna studies are stable.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field as PydanticField
from pydantic import StrictInt, StrictStr, field_validator, model_validator

from resnetx import ResNetXConfig
from resnetx.config import StrictConfig
from resnetx.errors import ConfigError
from search_spaces.expressions import DERIVED
from search_spaces.params import Choice, Constant, Grid, Match, Param, Split, parse_param

MODEL_FIELDS: tuple[str, ...] = tuple(ResNetXConfig.model_fields)
# The fields of sweep.config.experiment.DataConfig / TrainConfig (search_spaces may not import sweep).
DATA_FIELDS: tuple[str, ...] = ("name", "root", "download", "val_fraction", "split_seed", "image_size", "augment",
                                "subset", "loader", "resident_limit_mb", "workers")
TRAIN_FIELDS: tuple[str, ...] = (
    "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule", "warmup_epochs",
    "label_smoothing", "amp", "channels_last", "compile", "seed", "device", "num_threads", "evaluate_test",
    "weights", "freeze", "checkpoint_every", "grad_clip",
)
SECTIONS: dict[str, tuple[str, ...]] = {"model": MODEL_FIELDS, "data": DATA_FIELDS, "train": TRAIN_FIELDS}
_OBJECTIVE = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*:(max|min)$")


class Budget(StrictConfig):
    """Limits checked on the model before anything trains (FLOPs at the space's input size)."""

    error_prefix: ClassVar[str] = "budget"

    max_params: StrictInt | None = PydanticField(default=None, gt=0)
    max_flops: StrictInt | None = PydanticField(default=None, gt=0)


PRETRAINED = "pretrained"  # train.weights value: warm-start from the space's own pretrain stage


class Pretrain(StrictConfig):
    """A first stage the sweep runs itself: the network that ``train.weights: pretrained`` trials load.

    For each trial asking for it, the pretrain config is the trial's own config with these
    (constant) overrides, trained from scratch; trials that share a pretrain config share one run.
    """

    error_prefix: ClassVar[str] = "pretrain"

    model: dict[str, Any] = PydanticField(default_factory=dict)
    train: dict[str, Any] = PydanticField(default_factory=dict)

    @model_validator(mode="after")
    def _constants(self) -> Pretrain:
        for section in ("model", "train"):
            for key, value in getattr(self, section).items():
                if key not in SECTIONS[section]:
                    raise ConfigError(f"{section}.{key}", value, f"unknown key; known: {', '.join(SECTIONS[section])}")
                if isinstance(value, dict):
                    raise ConfigError(f"{section}.{key}", value, "must be a constant (the stage is not searched)")
        if self.train.get("weights") not in (None, ""):
            raise ConfigError("train.weights", self.train["weights"], "must be null: the pretrain stage trains "
                                                                      "from scratch")
        return self


class FinalRecipe(StrictConfig):
    """The full-fidelity recipe of the confirm stage: constant overrides of ``data`` and ``train``
    (e.g. ``data.subset: null``, ``data.image_size: 28``, ``train.epochs: 30``,
    ``train.evaluate_test: true``) applied to every candidate the stage retrains."""

    error_prefix: ClassVar[str] = "final"

    data: dict[str, Any] = PydanticField(default_factory=dict)
    train: dict[str, Any] = PydanticField(default_factory=dict)

    @model_validator(mode="after")
    def _constants(self) -> FinalRecipe:
        for section in ("data", "train"):
            for key, value in getattr(self, section).items():
                if key not in SECTIONS[section]:
                    raise ConfigError(f"{section}.{key}", value, f"unknown key; known: {', '.join(SECTIONS[section])}")
                if isinstance(value, dict):
                    raise ConfigError(f"{section}.{key}", value, "must be a constant (the final recipe is not "
                                                                 "searched)")
        if "seed" in self.train:
            raise ConfigError("train.seed", self.train["seed"], "is set by the confirm stage (confirm.seeds)")
        return self


CANDIDATE_RULES = ("front", "top-K", "within-noise")  # what confirm.candidates may say
_TOP = re.compile(r"^top-(\d+)$")


def check_candidate_rule(rule: str, field: str = "confirm.candidates") -> str:
    """``front``, ``top-K`` (K >= 1) or ``within-noise``; a one-line error otherwise."""
    match = _TOP.match(rule)
    if rule in ("front", "within-noise") or (match and int(match.group(1)) >= 1):
        return rule
    raise ConfigError(field, rule, "must be front, top-K (e.g. top-5) or within-noise")


class Confirm(StrictConfig):
    """How the confirm stage picks and retrains candidates (``resnetx confirm``)."""

    error_prefix: ClassVar[str] = "confirm"

    seeds: StrictInt = PydanticField(default=3, ge=1)
    candidates: StrictStr = "front"  # one of CANDIDATE_RULES
    # within-noise: the seed noise of the accuracy objective (e.g. the sd of a seed-to-seed
    # difference measured on a record); a network within it of the front is a candidate too
    noise: float | None = PydanticField(default=None, ge=0)

    @field_validator("candidates")
    @classmethod
    def _rule(cls, value: str) -> str:
        return check_candidate_rule(value, "candidates")


class SpaceFile(StrictConfig):
    """What a space file may contain (sections are parsed into fields by :func:`compile_fields`)."""

    name: StrictStr | None = None
    description: StrictStr = ""
    objectives: list[StrictStr] = PydanticField(default_factory=list)
    input_size: tuple[StrictInt, StrictInt, StrictInt] | None = None
    budget: Budget = PydanticField(default_factory=Budget)
    replicates: StrictInt | None = PydanticField(default=None, ge=1)
    pretrain: Pretrain | None = None
    final: FinalRecipe | None = None  # the confirm stage's full-fidelity recipe
    confirm: Confirm = PydanticField(default_factory=Confirm)
    # Hypervolume reference point per objective (metric -> value); budgets and chance level fill
    # in what is not given (SearchSpace.reference_point).
    reference: dict[StrictStr, float] = PydanticField(default_factory=dict)
    model: dict[str, Any] = PydanticField(default_factory=dict)
    data: dict[str, Any] = PydanticField(default_factory=dict)
    train: dict[str, Any] = PydanticField(default_factory=dict)

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            if not _OBJECTIVE.match(text):
                raise ConfigError(f"objectives.{i}", text, "must look like metric:max or metric:min")
        return value

    @field_validator("input_size")
    @classmethod
    def _input_size(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and min(value) < 1:
            raise ConfigError("input_size", list(value), "must be three positive integers [C, H, W]")
        return value

    @model_validator(mode="after")
    def _sections(self) -> SpaceFile:
        for section, known in SECTIONS.items():
            for key in getattr(self, section):
                if key not in known:
                    raise ConfigError(f"{section}.{key}", getattr(self, section)[key],
                                      f"unknown key; known: {', '.join(known)}")
        if self.replicates is not None and "seed" in self.train:
            raise ConfigError("replicates", self.replicates, "cannot be combined with train.seed "
                                                             "(use train.seed: {grid: [...]} for chosen seeds)")
        return self


def compile_fields(spec: SpaceFile) -> list[Param]:
    """Bound fields of a space in dependency order (replicate seeds first: the outermost grid axis)."""
    fields: list[Param] = []
    if spec.replicates is not None:
        fields.append(Grid(grid=list(range(spec.replicates))).bind("train.seed", "train"))
    for section in SECTIONS:
        for key, raw in getattr(spec, section).items():
            name = f"{section}.{key}"
            param = parse_param(name, raw)
            if isinstance(param, Split) and name != "model.num_nodes":
                raise ConfigError(name, raw, "a depth split is only allowed for model.num_nodes")
            fields.append(param.bind(name, section))
    return order_fields(fields)


def order_fields(fields: list[Param]) -> list[Param]:
    """Topological order (file order among independent fields); unknown names and cycles are errors."""
    by_name = {f.name: f for f in fields}
    deps: dict[str, set[str]] = {}
    for f in fields:
        needed = set()
        for ref in f.refs():
            target = DERIVED.get(ref, ref)
            if target not in by_name:
                if ref == "model.fold" and isinstance(f, Split):
                    continue  # fold not searched: ResNetXConfig's default (1) applies
                known = sorted(set(by_name) | {d for d, src in DERIVED.items() if src in by_name})
                raise ConfigError(f.name, ref, f"refers to an unknown field; known: {', '.join(known)}")
            if target == f.name:
                raise ConfigError(f.name, ref, "refers to itself")
            needed.add(target)
        deps[f.name] = needed
    ordered: list[Param] = []
    done: set[str] = set()
    pending = [f.name for f in fields]
    while pending:
        ready = next((n for n in pending if deps[n] <= done), None)
        if ready is None:
            raise ConfigError(pending[0], sorted(deps[pending[0]] - done), "depends on itself through these fields")
        ordered.append(by_name[ready])
        done.add(ready)
        pending.remove(ready)
    return ordered


def check_static(fields: list[Param]) -> None:
    """Checks that need several fields: splits that no fold can fill, matches that miss a value."""
    by_name = {f.name: f for f in fields}
    intervals: dict[str, tuple[int, int]] = {}
    for f in fields:
        interval = f.int_interval(intervals)
        if interval is not None:
            intervals[f.name] = interval
    for f in fields:
        if isinstance(f, Split):
            _check_split(f, by_name, intervals)
        if isinstance(f, Match):
            target = by_name.get(f.refs()[0])
            if isinstance(target, (Constant, Choice, Grid)):
                for value in target.options({}) or []:
                    f.lookup(value)


def _check_split(f: Split, by_name: dict[str, Param], intervals: dict[str, tuple[int, int]]) -> None:
    if f.min_per_stage == "auto" and "model.fold" in by_name:
        if "model.fold" not in intervals:
            return  # fold's range is not statically known: samples that cannot be split are rejected
        fold = intervals["model.fold"][1]
        minimum = max(1, 2 * (fold - 1))
        why = f"with fold up to {fold}, each of {f.stages} stages needs >= {minimum} units"
    else:
        minimum = 1 if f.min_per_stage == "auto" else int(f.min_per_stage)
        why = f"each of {f.stages} stages needs >= {minimum} units"
    need = f.stages * minimum
    total = f.total
    if total.kind == "range":
        high = total.int_interval(intervals)
        if high is not None and high[1] < need:
            raise ConfigError(f"{f.name}.split.high", high[1], f"must be >= {need} ({why})")
    else:
        for value in total.options({}) or []:
            if value < need:
                raise ConfigError(f"{f.name}.split", value, f"must be >= {need} ({why})")
