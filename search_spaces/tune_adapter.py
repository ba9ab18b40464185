"""Ray Tune ``param_space`` from a search space, and back.

Keys are the flat field names (``model.fold``, ``train.lr``), as in Optuna and in MLflow
params. Fields that depend on nothing become Tune's own domains (``tune.choice``,
``tune.randint``, ``tune.loguniform``, ``tune.grid_search`` for grid axes when ``kind="grid"``).
Fields with dependent bounds, depth splits, expressions and matches become ``tune.sample_from``
functions that draw with the *same* code as :meth:`SearchSpace.sample`, from a
``random.Random`` seeded by one hidden Tune variable (``_space_seed``) and the field's name,
so Tune's own ``random_state`` makes the whole point reproducible. Tune resolves the functions
in dependency order by retrying those whose inputs are not drawn yet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from resnetx.errors import ConfigError
from search_spaces.drawers import RandomDrawer
from search_spaces.expressions import DERIVED, derived_value
from search_spaces.params import Choice, Constant, Grid, Param, Range

SEED_KEY = "_space_seed"
KINDS = ("random", "grid")


class DependentField:
    """``tune.sample_from`` body for one field: read its inputs, draw with a seeded RNG."""

    def __init__(self, param: Param) -> None:
        self.param = param

    def __call__(self, spec: Mapping[str, Any]) -> Any:
        from ray.tune.search.variant_generator import RecursiveDependencyError

        config = spec["config"] if SEED_KEY not in spec and isinstance(spec.get("config"), Mapping) else spec
        values: dict[str, Any] = {}
        for name in (SEED_KEY, *self.param.refs()):
            source = DERIVED.get(name, name)
            if source not in config:
                if name == "model.fold":  # a split's fold when fold is not searched
                    continue
                raise ConfigError(self.param.name, name, "is missing from the Tune config")
            value = config[source]
            if _unresolved(value):
                raise RecursiveDependencyError(f"{self.param.name} waits for {source}")
            values[source] = value
            if source == "model.num_nodes":
                for derived in DERIVED:
                    values[derived] = derived_value(derived, value)
        rng = random.Random(f"{values[SEED_KEY]}:{self.param.name}")
        return self.param.draw(values, RandomDrawer(rng))


def _unresolved(value: Any) -> bool:
    from ray.tune.search.sample import Domain

    return isinstance(value, Domain) or (isinstance(value, Mapping) and "grid_search" in value)


def _domain(param: Param, kind: str) -> Any:
    """Tune's own domain for an independent field, or None when it needs ``sample_from``."""
    from ray import tune

    if param.refs():
        return None
    if isinstance(param, Constant):
        return param.value
    if isinstance(param, Grid):
        return tune.grid_search(list(param.grid)) if kind == "grid" else tune.choice(list(param.grid))
    if isinstance(param, Choice):
        return tune.choice(list(param.choice))
    if isinstance(param, Range):
        low, high = param.bounds({})
        if param.step and not param.log:
            return tune.choice(param.options({}))
        if param.type == "int":
            return tune.lograndint(int(low), int(high) + 1) if param.log else tune.randint(int(low), int(high) + 1)
        return tune.loguniform(low, high) if param.log else tune.uniform(low, high)
    return None


def tune_param_space(fields: Sequence[Param], kind: str) -> dict[str, Any]:
    """A flat ``param_space`` for ``BasicVariantGenerator`` (random search or grid search)."""
    from ray import tune

    if kind not in KINDS:
        raise ConfigError("search", kind, f"must be one of {', '.join(KINDS)} for a Tune param_space")
    space: dict[str, Any] = {}
    for param in fields:
        domain = _domain(param, kind)
        space[param.name] = tune.sample_from(DependentField(param)) if domain is None else domain
    if any(param.refs() or _domain(param, kind) is None for param in fields):
        space[SEED_KEY] = tune.randint(0, 2**31 - 1)
    return space


def from_tune_config(fields: Sequence[Param], config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The nested experiment config from what Tune passes the trainable (extra keys ignored)."""
    out: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "train": {}}
    for param in fields:
        if param.name not in config:
            raise ConfigError("config", param.name, "is missing from the Tune config")
        section, key = param.name.split(".", 1)
        out[section][key] = config[param.name]
    return out
