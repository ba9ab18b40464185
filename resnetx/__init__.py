"""ResNetX: folded ResNets. ``fold == 1`` is torchvision's ResNet; ``fold > 1`` adds long skips.

Public API (stable names)::

    from resnetx import (ResNetX, ResNetXConfig, build_model, get_pred, layer_diff,
                         load_torchvision_weights, count_params, count_flops)
"""

from resnetx.config import ResNetXConfig
from resnetx.errors import ConfigError
from resnetx.measure import count_flops, count_params, measure_latency
from resnetx.model import ResNetX, build_model
from resnetx.pretrained import LoadReport, load_torchvision_weights
from resnetx.wiring import WiringPlan, get_pred, layer_diff
from resnetx.zoo import builtin_config, builtin_names, resolve_config

__all__ = [
    "ConfigError",
    "LoadReport",
    "ResNetX",
    "ResNetXConfig",
    "WiringPlan",
    "build_model",
    "builtin_config",
    "builtin_names",
    "count_flops",
    "count_params",
    "get_pred",
    "layer_diff",
    "load_torchvision_weights",
    "measure_latency",
    "resolve_config",
]
