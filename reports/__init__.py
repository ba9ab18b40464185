"""Reading sweeps back from MLflow: Pareto ranks, hypervolume, plots, reports, exported configs.

The notebook API (see docs/api.md)::

    from reports import load_sweep, pareto_front, hypervolume, plot_front

    df = load_sweep("resnetx-runs")            # the latest sweep, one row per trial
    front = pareto_front(df[df["model.fold"] > 1], "val_acc:max,params:min")
    hypervolume(front, reference=[0.5, 200_000])
    plot_front(df)                             # the report's pareto.png, as a matplotlib Figure

The names resolve lazily (PEP 562 ``__getattr__``): ``reports.schema`` is imported by the
sweep's lower layers, and importing it must not pull in pandas, torch or MLflow.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.frames import (
        hypervolume,
        knee,
        load_sweep,
        objectives_of,
        pareto_front,
        pareto_rank,
        plot_front,
        reference_point,
    )

__all__ = ["hypervolume", "knee", "load_sweep", "objectives_of", "pareto_front", "pareto_rank", "plot_front",
           "reference_point"]
_HOME = "reports.frames"  # where every public name lives


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps the public function ``reports.hypervolume`` from being replaced by the submodule.

    ``reports/hypervolume.py`` (the numpy algorithm) shares the name. Python binds a submodule
    as an attribute of its package the first time it is imported, which would make
    ``from reports import hypervolume`` return the module or the function depending on what
    was imported before. The submodule stays importable (``from reports.hypervolume import ...``
    reads ``sys.modules``); only the package attribute is kept for the API.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
