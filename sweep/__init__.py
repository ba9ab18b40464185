"""Ray Tune sweeps over ResNetX search spaces, tracked in MLflow; the Python API is at the root.

    from sweep import run_sweep, train

    result = run_sweep(space="quick", num_samples=8, overrides={"train.epochs": 2})
    df = result.trials()                       # one row per trial (pandas)
    run = train("tiny", {"train.epochs": 3})   # one config, no Ray; run.metrics

The names are resolved lazily (PEP 562 ``__getattr__``): importing ``sweep.training.loop``
imports this package first, and the training layer must load neither Ray nor MLflow
(tests/test_layers.py), so nothing heavy may be imported here. See docs/api.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweep.api import SweepResult, TrainRun, confirm, experiment_config, run_sweep, sweep_settings, train

__all__ = ["SweepResult", "TrainRun", "confirm", "experiment_config", "run_sweep", "sweep_settings", "train"]
_HOME = "sweep.api"  # where every public name lives


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
