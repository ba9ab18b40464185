"""``ResNetXConfig``: the validated, serialisable description of one folded ResNet.

Field names follow DESIGN.md §2 (the seed's names are accepted as aliases: ``ni``, ``c_in``,
``c_out``). Invalid values fail at construction with a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from resnetx.errors import ConfigError, known, one_line
from resnetx.wiring import WiringPlan, make_plan, stage_widths

# Names are checked against these tuples so the config stays importable without torch;
# ``resnetx.registry`` asserts at import time that they match the module registries.
UNIT_NAMES = ("basic", "bottleneck", "preact_basic", "preact_bottleneck", "mbconv", "xception")
STEM_NAMES = ("imagenet", "deep", "cifar")
SHORTCUT_NAMES = ("projection", "avgpool", "maxpool", "zeropad")


class StrictConfig(BaseModel):
    """Base for every config object: unknown keys rejected, immutable, one-line errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    error_prefix: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise one_line(exc, self.error_prefix) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) that YAML and JSON round-trip exactly."""
        return json.loads(self.model_dump_json())

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str):
        data = yaml.safe_load(text)
        if not isinstance(data, Mapping):
            raise ConfigError(cls.error_prefix or "<config>", type(data).__name__,
                              "must be a mapping of field: value")
        return cls(**data)


# Seed names accepted on input (DESIGN.md §2); output always uses the canonical names.
FIELD_ALIASES: dict[str, str] = {"ni": "stem_width", "c_in": "in_channels", "c_out": "num_classes"}


def canonical_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rename seed aliases to field names; giving a field under two names is an error, not a guess."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = FIELD_ALIASES.get(key, key)
        if name in out:
            alias = key if key != name else next(a for a, n in FIELD_ALIASES.items() if n == name and a in data)
            raise ConfigError(alias, data[alias], f"is an alias of {name}; give only one of them")
        out[name] = value
    return out


def _positive(field: str, value: int | float) -> None:
    if value <= 0:
        raise ConfigError(field, value, "must be > 0")


class ResNetXConfig(StrictConfig):
    """A folded ResNet. ``fold == 1`` with torchvision's units/stem/shortcuts is a torchvision ResNet."""

    num_nodes: tuple[StrictInt, ...] = (3, 4, 6, 3)
    fold: StrictInt = 1
    start_id: StrictInt | None = None
    end_id: StrictInt | None = None
    unit: str = "bottleneck"
    stem: str = "imagenet"
    shortcut: str = "projection"
    stem_width: StrictInt = Field(64, validation_alias=AliasChoices("stem_width", "ni"))
    base: StrictInt = 64
    exp: float = 2.0
    bottle_scale: float = 4.0
    kernel_size: StrictInt = 3
    first_downsample: StrictBool = False
    in_channels: StrictInt = Field(3, validation_alias=AliasChoices("in_channels", "c_in"))
    num_classes: StrictInt = Field(1000, validation_alias=AliasChoices("num_classes", "c_out"))
    drop_rate: float = 0.0
    zero_init_last: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        # pydantic alone would take one spelling and call the other an "unknown key".
        return canonical_keys(data) if isinstance(data, Mapping) else data

    @field_validator("exp", "bottle_scale", "drop_rate", mode="before")
    @classmethod
    def _real_number(cls, value: Any, info) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(info.field_name, value, "must be a number")
        return value

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        return known("unit", value, UNIT_NAMES)

    @field_validator("stem")
    @classmethod
    def _known_stem(cls, value: str) -> str:
        return known("stem", value, STEM_NAMES)

    @field_validator("shortcut")
    @classmethod
    def _known_shortcut(cls, value: str) -> str:
        return known("shortcut", value, SHORTCUT_NAMES)

    @model_validator(mode="after")
    def _check(self) -> ResNetXConfig:
        if not self.num_nodes:
            raise ConfigError("num_nodes", list(self.num_nodes), "must list at least one stage")
        for i, count in enumerate(self.num_nodes):
            if count < 1:
                raise ConfigError(f"num_nodes.{i}", count, "must be >= 1 unit per stage")
        for name in ("stem_width", "base", "in_channels", "num_classes"):
            _positive(name, getattr(self, name))
        _positive("exp", self.exp)
        _positive("bottle_scale", self.bottle_scale)
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError("kernel_size", self.kernel_size, "must be an odd integer >= 1")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError("drop_rate", self.drop_rate, "must be in [0, 1)")
        if self.fold < 1:
            raise ConfigError("fold", self.fold, "must be >= 1")
        self._check_ids()
        hidden, out = stage_widths(self.base, self.exp, self.bottle_scale, len(self.num_nodes))
        for i, (h, o) in enumerate(zip(hidden, out)):
            if h < 1 or o < 1:
                raise ConfigError("bottle_scale" if h >= 1 else "exp", self.bottle_scale if h >= 1 else self.exp,
                                  f"gives stage {i} a width of {min(h, o)}; every width must be >= 1")
        if self.shortcut == "zeropad":
            self._check_zeropad()
        return self

    def _check_zeropad(self) -> None:
        """Zero padding adds channels; a skip into a narrower node (e.g. a wide stem) cannot use it."""
        for node in self.plan().nodes:
            if node.projects and node.shortcut_in_channels > node.out_channels:
                raise ConfigError("shortcut", self.shortcut,
                                  f"pads channels and cannot drop them: node {node.index} takes "
                                  f"{node.shortcut_in_channels} channels from node {node.pred} but has "
                                  f"{node.out_channels}; use projection or widths that do not shrink")

    def _check_ids(self) -> None:
        last = self.total_nodes
        start, end = self.effective_start_id, self.effective_end_id
        if start < self.fold:
            raise ConfigError("start_id", start, f"must be >= fold ({self.fold})")
        if start > last:
            raise ConfigError("start_id", start, f"must be <= the last node ({last})")
        if end > last:
            raise ConfigError("end_id", end, f"must be <= the last node ({last})")
        if self.fold > 1 and end <= start:
            raise ConfigError("end_id", end, f"must be > start_id ({start})")
        if end < start:
            raise ConfigError("end_id", end, f"must be >= start_id ({start})")

    # -- derived quantities -------------------------------------------------------------
    @property
    def total_nodes(self) -> int:
        return sum(self.num_nodes)

    @property
    def effective_start_id(self) -> int:
        return self.fold if self.start_id is None else self.start_id

    @property
    def effective_end_id(self) -> int:
        return self.total_nodes if self.end_id is None else self.end_id

    def plan(self) -> WiringPlan:
        """The static wiring plan this config builds."""
        hidden, out = stage_widths(self.base, self.exp, self.bottle_scale, len(self.num_nodes))
        return make_plan(self.num_nodes, self.fold, self.effective_start_id, self.effective_end_id,
                         self.stem_width, hidden, out, self.first_downsample)

    def canonical(self) -> dict[str, Any]:
        """What determines the network, and nothing else.

        Two configs with the same canonical form build the same network (same modules, same
        wiring, same initialisation rule): e.g. any start/end ids when ``fold == 1``, or two
        ``bottle_scale`` values that round to the same widths.
        """
        plan = self.plan()
        return {
            "unit": self.unit,
            "stem": self.stem,
            "shortcut": self.shortcut if any(n.projects for n in plan.nodes) else None,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "stem_width": self.stem_width,
            "num_nodes": list(self.num_nodes),
            "hidden_widths": list(plan.hidden_widths),
            "out_widths": list(plan.out_widths),
            "strides": list(plan.strides),
            "kernel_size": self.kernel_size,
            "preds": list(plan.preds),
            "drop_rate": self.drop_rate,
            "zero_init_last": self.zero_init_last,
        }

    def canonical_hash(self) -> str:
        """Short stable hash of :meth:`canonical` (12 hex digits of SHA-256)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> ResNetXConfig:
        """A copy with some fields changed, validated again."""
        return ResNetXConfig(**{**self.to_dict(), **canonical_keys(changes)})
