"""The small pieces: depth splits, bound expressions, exact cached costs, drawers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from resnetx import ResNetXConfig, count_flops, count_params
from resnetx.errors import ConfigError
from search_spaces import all_splits, config_cost, count_splits, min_units_per_stage, random_split
from search_spaces.drawers import RandomDrawer
from search_spaces.expressions import parse_expr


def test_min_units_per_stage_is_the_seed_rule():
    assert [min_units_per_stage(f) for f in (1, 2, 3, 4)] == [1, 2, 4, 6]


@pytest.mark.parametrize(("total", "stages", "minimum"), [(9, 3, 1), (12, 3, 2), (18, 3, 6), (7, 1, 1), (10, 4, 2)])
def test_splits_enumerate_and_count(total, stages, minimum):
    splits = list(all_splits(total, stages, minimum))
    assert len(splits) == count_splits(total, stages, minimum) == len(set(splits))
    assert splits == sorted(splits)
    assert all(sum(s) == total and len(s) == stages and min(s) >= minimum for s in splits)


def test_random_split_is_uniform_and_seeded():
    rng = random.Random(0)
    draws = Counter(random_split(8, 3, 1, rng) for _ in range(21000))
    assert set(draws) == set(all_splits(8, 3, 1))  # all 21 compositions occur ...
    assert max(draws.values()) < 1.2 * min(draws.values())  # ... about equally often (~1000 each)
    first = random_split(12, 3, 2, random.Random(5))
    assert [random_split(12, 3, 2, random.Random(5)) for _ in range(3)] == [first] * 3
    with pytest.raises(ValueError):
        random_split(5, 3, 2, rng)
    assert count_splits(5, 3, 2) == 0


def test_expressions():
    expr = parse_expr("last_node - 1", "model.start_id.high", "model")
    assert expr.names == ("model.last_node",)
    assert expr.evaluate({"model.last_node": 9}) == 8
    assert parse_expr("2 * fold + 1", "x", "model").evaluate({"model.fold": 3}) == 7
    assert parse_expr("train.epochs - model.fold", "x", "data").names == ("train.epochs", "model.fold")
    assert parse_expr("-fold + 4", "x", "model").interval({"model.fold": (1, 3)}) == (1, 3)
    for bad in ("", "fold ** 2", "fold * 2", "foo(1)", "1.5 + fold"):
        with pytest.raises(ConfigError):
            parse_expr(bad, "model.start_id.low", "model")


CONFIGS = [
    {"num_nodes": (2, 2, 2), "stem": "cifar", "unit": "basic", "bottle_scale": 1.0, "base": 8, "stem_width": 8},
    {"num_nodes": (3, 1, 2), "stem": "cifar", "unit": "bottleneck", "fold": 3, "start_id": 3, "end_id": 6,
     "shortcut": "avgpool", "base": 8, "stem_width": 16, "first_downsample": True},
    {"num_nodes": (1, 4), "stem": "deep", "unit": "mbconv", "bottle_scale": 0.5, "kernel_size": 5, "fold": 2,
     "start_id": 2, "shortcut": "maxpool", "base": 16, "stem_width": 16, "in_channels": 1, "drop_rate": 0.1},
    {"num_nodes": (2, 3), "stem": "imagenet", "unit": "xception", "fold": 2, "start_id": 2, "base": 8,
     "stem_width": 8, "num_classes": 7},
    {"num_nodes": (3,), "stem": "cifar", "unit": "preact_bottleneck", "fold": 2, "start_id": 2, "base": 8,
     "stem_width": 8, "bottle_scale": 2.0},
]


@pytest.mark.parametrize("fields", CONFIGS)
def test_cached_cost_equals_the_library_counters(fields):
    config = ResNetXConfig(**fields)
    size = (config.in_channels, 35, 33)  # odd sizes exercise every rounding rule
    cost = config_cost(config, size)
    assert cost.params == count_params(config)
    assert cost.flops == count_flops(config, size)
    assert config_cost(config).flops is None


def test_random_drawer_stays_in_range():
    drawer = RandomDrawer(random.Random(3))
    ints = [drawer.integer("x", 2, 40, 1, True) for _ in range(500)]
    assert min(ints) >= 2 and max(ints) <= 40 and len(set(ints)) > 20
    assert {drawer.integer("x", 0, 10, 5, False) for _ in range(100)} == {0, 5, 10}
    reals = [drawer.real("y", 1e-4, 1e-1, None, True) for _ in range(500)]
    assert min(reals) >= 1e-4 and max(reals) <= 1e-1
    assert sum(r < 1e-2 for r in reals) > 250  # log-uniform: two of three decades below 1e-2
    assert {drawer.real("z", 0.0, 1.0, 0.5, False) for _ in range(100)} == {0.0, 0.5, 1.0}
