"""Size and cost of a network: parameters, forward FLOPs, latency.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per multiply-add
(so MACs = FLOPs / 2), for one image of the given size, forward only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _as_module(model: nn.Module | Any, device: Any = "meta") -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    from resnetx.model import build_model

    return build_model(model, device=device)


def count_params(model: nn.Module | Any, trainable_only: bool = False) -> int:
    """Exact number of parameters. A config or built-in name is counted without allocating."""
    module = _as_module(model)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module | Any, input_size: Sequence[int] = (3, 224, 224)) -> int:
    """Forward FLOPs (2 per multiply-add) for a batch of one image of ``input_size`` (C, H, W)."""
    module = _as_module(model)
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(torch.zeros(1, *input_size, device=device))
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_size: Sequence[int] = (3, 224, 224),
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median forward latency in milliseconds (eval mode, no grad) after ``warmup`` runs."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats: got {repeats}, warmup: got {warmup}; need repeats >= 1, warmup >= 0")
    device = torch.device(device)
    was_training = model.training
    module = model.to(device).eval()
    x = torch.randn(batch_size, *input_size, device=device)
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                module(x)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)  # measuring must not leave a training model in eval mode
    return statistics.median(times)
