"""Built-in configs by name: torchvision's ResNets, their folded variants, and a few small nets.

Names are ``<base>`` or ``<base>-fold<K>``; a folded variant folds from node ``K`` to the last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from resnetx.config import ResNetXConfig
from resnetx.errors import ConfigError

_BASIC = {"unit": "basic", "bottle_scale": 1.0}
_BOTTLENECK = {"unit": "bottleneck", "bottle_scale": 4.0}

BUILTIN_CONFIGS: dict[str, dict[str, Any]] = {
    "resnet18": {**_BASIC, "num_nodes": (2, 2, 2, 2)},
    "resnet34": {**_BASIC, "num_nodes": (3, 4, 6, 3)},
    "resnet50": {**_BOTTLENECK, "num_nodes": (3, 4, 6, 3)},
    "resnet101": {**_BOTTLENECK, "num_nodes": (3, 4, 23, 3)},
    "resnet152": {**_BOTTLENECK, "num_nodes": (3, 8, 36, 3)},
    # The seed notebook's example: ResNet-152 depths, mbconv units, folded from stage 3.
    "seed-mbconv": {
        "num_nodes": (3, 8, 36, 3), "fold": 2, "start_id": 3 + 8 + 2 + 1, "end_id": 3 + 8 + 3 + 36 - 3,
        "unit": "mbconv", "bottle_scale": 0.5, "kernel_size": 5, "num_classes": 100,
    },
    # Small-image networks (CIFAR-style stem, 3 stages).
    "cifar-resnet20": {**_BASIC, "num_nodes": (3, 3, 3), "stem": "cifar", "stem_width": 16,
                        "base": 16, "num_classes": 10},
    "cifar-resnet56": {**_BASIC, "num_nodes": (9, 9, 9), "stem": "cifar", "stem_width": 16,
                        "base": 16, "num_classes": 10},
    "tiny": {**_BASIC, "num_nodes": (2, 2, 2), "stem": "cifar", "stem_width": 16, "base": 16,
             "num_classes": 10},
}

_NAME = re.compile(r"^(?P<base>[a-z0-9-]+?)(?:-fold(?P<fold>\d+))?$")


def builtin_names() -> list[str]:
    return sorted(BUILTIN_CONFIGS)


def builtin_config(name: str) -> ResNetXConfig:
    """The config behind a built-in name such as ``resnet50`` or ``resnet50-fold3``."""
    match = _NAME.match(name)
    base = match.group("base") if match else name
    if base not in BUILTIN_CONFIGS:
        raise ConfigError("model", name, "unknown built-in; known: "
                          + ", ".join(builtin_names()) + " (each also as <name>-fold<K>)")
    fields = dict(BUILTIN_CONFIGS[base])
    if match and match.group("fold"):
        fold = int(match.group("fold"))
        fields.update(fold=fold, start_id=max(fold, 1), end_id=None)
    return ResNetXConfig(**fields)


def resolve_config(spec: ResNetXConfig | Mapping[str, Any] | str) -> ResNetXConfig:
    """Accept a config, a plain mapping of its fields, or a built-in name."""
    if isinstance(spec, ResNetXConfig):
        return spec
    if isinstance(spec, str):
        return builtin_config(spec)
    if isinstance(spec, Mapping):
        return ResNetXConfig(**spec)
    raise ConfigError("model", type(spec).__name__, "must be a ResNetXConfig, a mapping or a built-in name")
