"""The experiment config: the unit of work (a trial, what ``resnetx train`` reads, what gets logged).

``ExperimentConfig(model, data, train)`` is validated once, at construction. The model section
may leave ``in_channels``/``num_classes`` unset: they are filled from the dataset's metadata
(``sweep.config.datasets.DATASETS``, no data loaded), so one model YAML serves every dataset. Errors of a
section carry its name: ``model.fold: got 0; must be >= 1``, ``train.lr: got -1; must be > 0``.

This module is light to import (pydantic and YAML only): Ray trials, search spaces and the CLI
build configs long before torch is needed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import StrictBool, StrictInt, field_validator, model_validator

from resnetx.config import ResNetXConfig, StrictConfig
from resnetx.errors import ConfigError, known
from resnetx.pretrained import TORCHVISION_UNITS
from sweep.config.datasets import DATASETS, dataset_meta
from sweep.config.overrides import yaml11_number

SECTIONS = ("model", "data", "train")
IGNORED_KEYS = ("provenance",)  # written by `resnetx export`; informative only
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "linear", "step", "constant")  # all after `warmup_epochs` of linear warm-up
FREEZE_MODES = ("none", "backbone", "all")
# Fields that change how a run executes, never what it trains: left out of config_hash.
EXECUTION_ONLY_TRAIN = ("seed", "device", "num_threads", "compile", "checkpoint_every")
# How the data reaches the device changes the random stream, not what is trained: like the device,
# the loader choice is left out of config_hash (a resumed run may switch paths; see sweep.data.stream).
EXECUTION_ONLY_DATA = ("download", "loader", "resident_limit_mb", "workers")
LOADERS = ("auto", "resident", "stream")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_MODEL_FILLED = {"in_channels": ("in_channels", "c_in"), "num_classes": ("num_classes", "c_out")}


# Ranges checked on the value as typed, so the error echoes it (``got -1``, not ``got -1.0``).
_RANGES: dict[str, tuple[Any, str]] = {
    "val_fraction": (lambda v: 0.0 < v < 1.0, "must be in (0, 1)"),
    "lr": (lambda v: v > 0, "must be > 0"),
    "momentum": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, "must be >= 0"),
    "warmup_epochs": (lambda v: v >= 0, "must be >= 0"),
    "label_smoothing": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "grad_clip": (lambda v: v > 0, "must be > 0 (or null for no clipping)"),
    "resident_limit_mb": (lambda v: v > 0, "must be > 0 MiB (or null: the trial's share of the device)"),
}


def _number(value: Any, field: str) -> Any:
    """Refuse bools and words where a number is meant (pydantic's lax mode would coerce ``True``).

    A numeric string is accepted: PyYAML reads ``1e-3`` (no dot) as a string, and that is how
    people write learning rates in YAML files and ``--set``.
    """
    value = yaml11_number(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(field, value, "must be a finite number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(field, value, "must be a number")
    ok, allowed = _RANGES.get(field, (lambda v: True, ""))
    if not ok(value):
        raise ConfigError(field, value, allowed)
    return value


class DataConfig(StrictConfig):
    """Which dataset, where it lives, how the training set is split and augmented."""

    error_prefix: ClassVar[str] = "data"

    name: str = "digits"
    root: str | None = None  # None: <runs_dir>/data
    download: StrictBool = False
    val_fraction: float = 0.1
    split_seed: StrictInt = 0
    image_size: StrictInt | None = None  # None: the dataset's default (DATASETS[name].image_size)
    augment: StrictBool = True
    subset: StrictInt | None = None  # cap on training examples (fast tests, quick looks)
    # How the splits reach the training device (sweep.data.stream): ``resident`` copies them there
    # once (fastest), ``stream`` feeds batches through a DataLoader; ``auto`` streams when the data
    # is larger than ``resident_limit_mb`` MiB (None: the trial's GPU share of the device's memory,
    # less a margin, and within what is free: sweep.data.stream.share_limit_mb; on the CPU the
    # resident path copies nothing, so auto is resident there unless a limit is set).
    loader: Literal["auto", "resident", "stream"] = "auto"
    resident_limit_mb: float | None = None
    workers: StrictInt | None = None  # DataLoader worker processes when streaming (None: half the threads, <= 4)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return known("name", value, DATASETS)

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        """Made absolute once, here: a Ray trial runs in a temporary working directory."""
        return str(Path(value).expanduser().resolve()) if value else value

    @field_validator("val_fraction", mode="before")
    @classmethod
    def _fraction_number(cls, value: Any) -> Any:
        return _number(value, "val_fraction")

    @field_validator("resident_limit_mb", mode="before")
    @classmethod
    def _limit_number(cls, value: Any) -> Any:
        return value if value is None else _number(value, "resident_limit_mb")

    @field_validator("loader", mode="before")
    @classmethod
    def _loader(cls, value: Any) -> Any:
        return known("loader", value, LOADERS)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.image_size is not None and self.image_size < 8:
            raise ConfigError("image_size", self.image_size, "must be >= 8 (or null for the dataset default)")
        if self.subset is not None and self.subset < 1:
            raise ConfigError("subset", self.subset, "must be >= 1 (or null for the whole training set)")
        if self.workers is not None and self.workers < 0:
            raise ConfigError("workers", self.workers, "must be >= 0 (0 loads batches in the training process; "
                              "or null for the default)")
        if self.name == "imagefolder" and not self.root:
            raise ConfigError("root", self.root, "imagefolder needs data.root: a folder with train/ (and val/, test/)")
        return self

    @property
    def effective_image_size(self) -> int:
        return self.image_size if self.image_size is not None else DATASETS[self.name].image_size


class TrainConfig(StrictConfig):
    """How one network is trained. Defaults train a small net on ``digits`` well in seconds."""

    error_prefix: ClassVar[str] = "train"

    epochs: StrictInt = 15
    batch_size: StrictInt = 128
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: StrictBool = True
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "linear", "step", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    amp: Literal["auto"] | StrictBool = "auto"  # mixed precision; only ever used on CUDA
    channels_last: StrictBool = False
    compile: StrictBool = False
    seed: StrictInt = 0
    device: str = "auto"
    num_threads: StrictInt | None = None  # torch intra-op threads; Ray trials set their CPU count
    evaluate_test: StrictBool = False
    weights: str | None = None  # torchvision warm start: weights name or .pth path
    freeze: Literal["none", "backbone", "all"] = "none"
    checkpoint_every: StrictInt = 1
    grad_clip: float | None = None

    @field_validator("lr", "momentum", "weight_decay", "warmup_epochs", "label_smoothing", "grad_clip",
                     mode="before")
    @classmethod
    def _numbers(cls, value: Any, info) -> Any:
        return value if value is None else _number(value, info.field_name)

    @field_validator("amp", mode="before")
    @classmethod
    def _amp(cls, value: Any) -> Any:
        if value != "auto" and not isinstance(value, bool):
            raise ConfigError("amp", value, "must be auto, true or false")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ConfigError("device", value, "must be auto, cpu, cuda, cuda:N or mps")
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.warmup_epochs > self.epochs:
            raise ConfigError("warmup_epochs", self.warmup_epochs, f"must be <= epochs ({self.epochs})")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError("num_threads", self.num_threads, "must be >= 1 (or null to keep torch's default)")
        if self.freeze != "none" and not self.weights:
            raise ConfigError("freeze", self.freeze, "needs train.weights (freezing random weights trains nothing)")
        return self


class ExperimentConfig(StrictConfig):
    """model + data + train: one training run, fully described, validated once."""

    model: ResNetXConfig
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ConfigError("<config>", type(raw).__name__, "must be a mapping with model, data, train sections")
        raw = {k: v for k, v in raw.items() if k not in IGNORED_KEYS}
        data = _section(raw.get("data"), DataConfig, "data")
        train = _section(raw.get("train"), TrainConfig, "train")
        model = _model_section(raw.get("model"), data)
        if train.weights and model.unit not in TORCHVISION_UNITS:  # refused before any trial starts
            units = " or ".join(TORCHVISION_UNITS)
            raise ConfigError("train.weights", train.weights, f"torchvision weights fit only {units} units "
                              f"(model.unit is {model.unit!r}); set train.weights to null")
        return {**raw, "model": model, "data": data, "train": train}

    # -- derived views ------------------------------------------------------------------
    def flat(self) -> dict[str, Any]:
        """``{"model.fold": 2, "train.lr": 0.1, ...}``: the MLflow params of a run."""
        from sweep.config.overrides import flatten

        return flatten(self.to_dict())

    def canonical(self) -> dict[str, Any]:
        """What determines the trained network: the model's canonical form, data, training.

        Execution-only fields (seed, device, threads, compile, checkpoint cadence, download)
        are left out, so two configs that train the same network the same way are equal; the
        data root is left out too (it is a cache location) except for ``imagefolder``, whose
        root *is* the dataset.
        """
        data = {k: v for k, v in self.data.to_dict().items() if k not in EXECUTION_ONLY_DATA}
        data["image_size"] = self.data.effective_image_size
        if self.data.name != "imagefolder":
            data.pop("root")
        train = {k: v for k, v in self.train.to_dict().items() if k not in EXECUTION_ONLY_TRAIN}
        return {"model": self.model.canonical(), "data": data, "train": train}

    def config_hash(self) -> str:
        """12 hex digits of SHA-256 over :meth:`canonical` (sorted keys, compact JSON)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def replace(self, **sections: Any) -> ExperimentConfig:
        """A copy with whole sections replaced (``cfg.replace(train=cfg.train.model_copy(...))``)."""
        return ExperimentConfig(**{**self.to_dict(), **{k: _plain(v) for k, v in sections.items()}})


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, StrictConfig) else value


def _section(value: Any, cls: type[StrictConfig], name: str) -> StrictConfig:
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if not isinstance(value, Mapping):
        raise ConfigError(name, value, "must be a mapping of field: value")
    return cls(**value)  # its error_prefix names the section


def _model_section(value: Any, data: DataConfig) -> ResNetXConfig:
    """Build the model, filling in_channels/num_classes from the dataset when not set explicitly."""
    meta = dataset_meta(data.name, data.root)
    wanted = {"in_channels": meta.in_channels, "num_classes": meta.num_classes}
    if isinstance(value, ResNetXConfig):
        fields, explicit = value.to_dict(), {k for k in _MODEL_FILLED if k in value.model_fields_set}
    elif value is None or isinstance(value, Mapping):
        fields = dict(value or {})
        explicit = {k for k, aliases in _MODEL_FILLED.items() if any(a in fields for a in aliases)}
    else:
        raise ConfigError("model", value, "must be a mapping of field: value")
    for key in _MODEL_FILLED:
        if key not in explicit and wanted[key] is not None:
            fields[key] = wanted[key]
    try:
        model = ResNetXConfig(**fields)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None
    for key in explicit:
        if wanted[key] is not None and getattr(model, key) != wanted[key]:
            raise ConfigError(f"model.{key}", getattr(model, key),
                              f"dataset {data.name} has {wanted[key]}; leave it unset to take it from the dataset")
    if meta.num_classes is None and "num_classes" not in explicit:
        raise ConfigError("model.num_classes", None, f"must be set: {data.name} does not know its classes "
                          "before loading (or point data.root at a folder with train/<class>/)")
    return model


def trial_key(config: Mapping[str, Any], seed_is_axis: bool = False) -> str:
    """The one de-duplication key: two configs with the same key train the same network the same way.

    :meth:`ExperimentConfig.config_hash` of the validated config (defaults filled, execution-only
    fields and the seed left out). Where a space makes the seed an axis (``replicates``), the
    seed is part of the key, so replicates stay distinct. The sweep's searcher and ``resnetx
    spaces show`` both count with this.
    """
    key = ExperimentConfig(**config).config_hash()
    if seed_is_axis:
        from reports.schema import SEED_KEY_SEPARATOR

        key += f"{SEED_KEY_SEPARATOR}{(config.get('train') or {}).get('seed')}"
    return key


def load_experiment(spec: str, sets: Sequence[str] = ()) -> ExperimentConfig:
    """Defaults < YAML file < ``--set key=value``, validated once.

    ``spec`` is an experiment YAML (sections model/data/train; a file holding only model
    fields is read as the model section) or a built-in model name such as ``tiny``, whose
    in_channels/num_classes are then taken from the dataset. A ``--set`` key without a
    section (``fold=3``) means the model.
    """
    from resnetx import builtin_config
    from sweep.config.overrides import apply_sets, read_yaml_file

    if Path(spec).suffix.lower() in {".yaml", ".yml", ".json"} or Path(spec).exists():
        raw: dict[str, Any] = read_yaml_file(spec)
        if not any(key in raw for key in (*SECTIONS, *IGNORED_KEYS)):
            raw = {"model": raw}
    else:
        model = builtin_config(spec).to_dict()
        for key in _MODEL_FILLED:
            model.pop(key)
        raw = {"model": model}
    sets = [item if item.split("=", 1)[0].split(".", 1)[0] in (*SECTIONS, *IGNORED_KEYS) else f"model.{item}"
            for item in sets]
    return ExperimentConfig(**apply_sets(raw, sets))
