"""Built-in configs by name: torchvision's ResNets, the paper's CIFAR ResNets, their folded variants.

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
_CIFAR = {**_BASIC, "stem": "cifar", "stem_width": 16, "base": 16, "num_classes": 10}
# He et al. 2016 (Table 6): depth 6n+2 = a 3x3 conv, n basic units per stage at widths 16/32/64,
# global pooling and a 10-way fc; parameter-free shortcuts (option A). 0.27M/0.46M/0.66M/0.85M/1.7M.
CIFAR_RESNETS: dict[str, dict[str, Any]] = {
    f"cifar-resnet{6 * n + 2}": {**_CIFAR, "num_nodes": (n, n, n), "shortcut": "zeropad"} for n in (3, 5, 7, 9, 18)
}

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
    **CIFAR_RESNETS,
    # The same depths with projection shortcuts (the paper's option B): 2,752 parameters more.
    "cifar-resnet20-proj": {**_CIFAR, "num_nodes": (3, 3, 3)},
    "cifar-resnet56-proj": {**_CIFAR, "num_nodes": (9, 9, 9)},
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
