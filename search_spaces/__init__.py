"""Declarative search spaces over ResNetX experiments.

    from search_spaces import load_space, builtin_spaces

    space = load_space("quick")              # or a path to a .yaml space file
    config = space.sample(random.Random(0))  # {"model": {...}, "data": {...}, "train": {...}}
    space.suggest(optuna_trial)              # Optuna define-by-run
    space.tune_param_space("random")         # Ray Tune param_space; space.from_tune_config(cfg)
    space.grid(), space.count_distinct(), space.budget_violation(config)

The YAML format is documented in docs/search_spaces.md. Depends on ``resnetx`` only.
"""

from search_spaces.cost import Cost, config_cost
from search_spaces.depth import all_splits, count_splits, min_units_per_stage, random_split
from search_spaces.loader import builtin_spaces, load_space, parse_space_text
from search_spaces.space import SearchSpace

__all__ = [
    "Cost",
    "SearchSpace",
    "all_splits",
    "builtin_spaces",
    "config_cost",
    "count_splits",
    "load_space",
    "min_units_per_stage",
    "parse_space_text",
    "random_split",
]
