"""What a network costs, measured once per trial: parameters, forward FLOPs and (when asked) latency.

Size and FLOPs depend on the architecture only, so they are exact and cheap (meta device, a
FLOP counter). Latency is a timing: it means something only when nothing else runs on the
device while it is measured. Two rules follow:

- it is measured only when it is asked for (``latency=True``: a sweep whose objectives include
  ``latency_ms``, or ``resnetx train``), never twice;
- measurements on one machine are serialised through a file lock, with warm-up, many repeats
  and the spread recorded, and how it was measured travels with the number
  (:data:`LATENCY_METHOD_KEYS`), so a latency front can be judged. Trials still training on
  other cores of the machine at that moment are not paused: on a shared CPU prefer FLOPs.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetx import count_flops, count_params

LATENCY_WARMUP, LATENCY_REPEATS, LATENCY_BATCH = 5, 30, 1
LATENCY_METHOD_KEYS = ("latency_device", "latency_batch", "latency_threads", "latency_repeats")
_LOCK = Path(tempfile.gettempdir()) / "resnetx-latency.lock"


def measure_costs(model: nn.Module, input_size: Sequence[int], device: torch.device, latency: bool) -> dict[str, Any]:
    """``params`` and ``flops`` (forward, 2 per multiply-add) always; latency metrics when ``latency``."""
    costs: dict[str, Any] = {"params": count_params(model), "flops": count_flops(model, tuple(input_size))}
    if latency:
        costs.update(measure_latency_exclusive(model, input_size, device))
    return costs


def measure_latency_exclusive(model: nn.Module, input_size: Sequence[int], device: torch.device) -> dict[str, Any]:
    """Median and interquartile range of batch-1 forward latency, one measurement per machine at a time."""
    was_training = model.training
    module = model.to(device).eval()
    x = torch.randn(LATENCY_BATCH, *input_size, device=device)
    times: list[float] = []
    with open(_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with torch.inference_mode():
                for i in range(LATENCY_WARMUP + LATENCY_REPEATS):
                    _sync(device)
                    start = time.perf_counter()
                    module(x)
                    _sync(device)
                    if i >= LATENCY_WARMUP:
                        times.append((time.perf_counter() - start) * 1000.0)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            model.train(was_training)
    q1, _, q3 = statistics.quantiles(times, n=4)
    return {"latency_ms": statistics.median(times), "latency_iqr_ms": q3 - q1,
            "latency_device": str(device), "latency_batch": LATENCY_BATCH,
            "latency_threads": torch.get_num_threads() if device.type == "cpu" else 0,
            "latency_repeats": LATENCY_REPEATS, "latency_pid": os.getpid()}


def numeric(costs: dict[str, Any]) -> dict[str, float]:
    """The metrics among the costs (the method keys that are strings stay out of metric logs)."""
    return {k: float(v) for k, v in costs.items() if isinstance(v, (int, float)) and k != "latency_pid"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
