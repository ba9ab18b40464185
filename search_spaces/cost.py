"""Exact parameter and FLOP counts of a config, fast enough to check a budget on every sample.

``resnetx.count_params`` / ``count_flops`` build the whole network on the meta device: exact,
but 10-50 ms per config, which is too slow for rejection sampling over thousands of points.
A ResNetX is a stem, one unit and one shortcut per node, and a head, and neither count has a
term that couples two of them (parameters are per module; ``FlopCounterMode`` counts only
convolutions and matrix products, not the residual additions or activations). So we count each
distinct building block once, on the meta device with the real ``resnetx`` modules, cache it
by its signature, and add up. ``tests/test_spaces_cost.py`` checks the sums against the
library's own counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from resnetx import ResNetXConfig


@dataclass(frozen=True)
class Cost:
    params: int
    flops: int | None  # forward FLOPs (2 per multiply-add) at the input size; None if not asked


@cache
def _registries() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
    from resnetx.heads import ClassifierHead
    from resnetx.registry import SHORTCUTS, STEMS, UNITS

    return UNITS, STEMS, SHORTCUTS, ClassifierHead


def _measure(build: Any, shape: tuple[int, ...] | None) -> tuple[int, int, tuple[int, ...] | None]:
    """(params, flops, output shape) of one module built on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        module = build()
    params = sum(p.numel() for p in module.parameters())
    if shape is None:
        return params, 0, None
    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(torch.empty(1, *shape, device="meta"))
    return params, int(counter.get_total_flops()), tuple(out.shape[1:])


@lru_cache(maxsize=65536)
def _stem(kind: str, cin: int, width: int, shape: tuple[int, ...] | None):
    return _measure(lambda: _registries()[1][kind](cin, width), shape)


@lru_cache(maxsize=65536)
def _unit(kind: str, cin: int, cout: int, hidden: int, stride: int, kernel: int, shape: tuple[int, ...] | None):
    return _measure(lambda: _registries()[0][kind](cin, cout, hidden, stride, kernel), shape)


@lru_cache(maxsize=65536)
def _shortcut(kind: str, cin: int, cout: int, stride: int, shape: tuple[int, ...] | None):
    return _measure(lambda: _registries()[2][kind](cin, cout, stride), shape)


@lru_cache(maxsize=4096)
def _head(cin: int, classes: int, final_norm: bool, drop: float, shape: tuple[int, ...] | None):
    return _measure(lambda: _registries()[3](cin, classes, final_norm=final_norm, drop_rate=drop), shape)


def config_cost(config: ResNetXConfig, input_size: Sequence[int] | None = None) -> Cost:
    """Parameters (always) and forward FLOPs at ``input_size`` (C, H, W) when given.

    Equal to ``count_params(config)`` and ``count_flops(config, input_size)``.
    """
    units, _, _, _ = _registries()
    plan = config.plan()
    unit_kind = config.unit
    shape = tuple(int(v) for v in input_size) if input_size is not None else None
    params, flops, shape = _stem(config.stem, config.in_channels, config.stem_width, shape)
    shapes = [shape]  # shapes[i] = output shape of node i (only when counting FLOPs)
    for node in plan.nodes:
        p, f, out = _unit(unit_kind, node.in_channels, node.out_channels, node.hidden_channels, node.stride,
                          config.kernel_size, shapes[node.index - 1])
        params, flops = params + p, flops + f
        if node.projects:
            p, f, _ = _shortcut(config.shortcut, node.shortcut_in_channels, node.out_channels,
                                node.shortcut_stride, shapes[node.pred])
            params, flops = params + p, flops + f
        shapes.append(out)
    final_norm = not units[unit_kind].post_activation
    p, f, _ = _head(plan.out_widths[-1], config.num_classes, final_norm, config.drop_rate, shapes[-1])
    return Cost(params=params + p, flops=flops + f if input_size is not None else None)
