"""Every built-in space: 1,000 samples are valid, build, meet the budget and respect dependent bounds."""

from __future__ import annotations

import random

import pytest
import torch

from resnetx import ResNetXConfig, build_model, count_flops, count_params
from search_spaces import builtin_spaces, load_space, min_units_per_stage

BUILTINS = ["cifar10-pareto", "fold-ablation", "imagenet-transfer", "quick"]
SAMPLES = 1000


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict]]:
    out = {}
    for name in BUILTINS:
        space = load_space(name)
        rng = random.Random(12345)
        out[name] = [space.sample(rng) for _ in range(SAMPLES)]
    return out


def test_builtin_names_are_the_yaml_files():
    assert builtin_spaces() == BUILTINS
    for name in BUILTINS:
        assert load_space(name).name == name


@pytest.mark.parametrize("name", BUILTINS)
def test_samples_are_valid_and_within_budget(name, samples):
    space = load_space(name)
    for cfg in samples[name]:
        assert set(cfg) == {"model", "data", "train"}
        ResNetXConfig(**cfg["model"])  # raises if it does not build
        assert space.budget_violation(cfg) is None
        if space.max_params is not None:
            assert space.cost(cfg).params <= space.max_params
        if space.max_flops is not None:
            assert space.cost(cfg).flops <= space.max_flops


@pytest.mark.parametrize("name", BUILTINS)
def test_dependent_bounds_hold(name, samples):
    for cfg in samples[name]:
        m = cfg["model"]
        last = sum(m["num_nodes"])
        fold = m["fold"]
        start = m.get("start_id", fold)
        end = m.get("end_id", last)
        assert fold <= start <= last - 1
        assert start < end <= last


def test_depth_split_respects_the_fold_minimum(samples):
    space = load_space("cifar10-pareto")
    seen_folds = set()
    for cfg in samples["cifar10-pareto"]:
        nodes, fold = cfg["model"]["num_nodes"], cfg["model"]["fold"]
        seen_folds.add(fold)
        assert len(nodes) == 3
        assert 6 <= sum(nodes) <= 18
        assert min(nodes) >= min_units_per_stage(fold)
    assert seen_folds == {1, 2, 3, 4}
    assert space.field("model.num_nodes").kind == "split"


def test_quick_is_small_and_varied(samples):
    cfgs = samples["quick"]
    units = {c["model"]["unit"] for c in cfgs}
    assert units == {"basic", "preact_basic", "bottleneck", "mbconv"}
    assert {c["model"]["fold"] for c in cfgs} == {1, 2, 3}
    assert all(c["data"] == {"name": "digits", "image_size": 16} for c in cfgs)
    assert all(4 <= c["train"]["epochs"] <= 6 for c in cfgs)
    assert load_space("quick").objectives == ["val_acc:max", "params:min"]
    assert load_space("quick").input_size == (1, 16, 16)


def test_sample_costs_match_the_library_counters(samples):
    """The budget is checked with cached per-block counts; they must equal a full meta build."""
    for name in BUILTINS:
        space = load_space(name)
        for cfg in samples[name][:3]:
            config = ResNetXConfig(**cfg["model"])
            cost = space.cost(cfg)
            assert cost.params == count_params(config)
            if name in ("quick", "cifar10-pareto"):
                assert cost.flops == count_flops(config, space.input_size)


@pytest.mark.parametrize("name", ["quick", "cifar10-pareto"])
def test_a_subset_builds_real_modules_and_runs(name, samples):
    space = load_space(name)
    for cfg in samples[name][:4]:
        model = build_model(cfg["model"]).eval()
        with torch.no_grad():
            out = model(torch.zeros(2, *space.input_size))
        assert out.shape == (2, cfg["model"]["num_classes"])


def test_large_backbones_build_on_meta(samples):
    for name in ("fold-ablation", "imagenet-transfer"):
        for cfg in samples[name][:4]:
            model = build_model(cfg["model"], device="meta")
            assert sum(p.numel() for p in model.parameters()) == load_space(name).cost(cfg).params


def test_same_seed_same_samples():
    space = load_space("quick")
    a = [space.sample(random.Random(7)) for _ in range(3)]
    rng1, rng2 = random.Random(99), random.Random(99)
    assert [space.sample(rng1) for _ in range(20)] == [space.sample(rng2) for _ in range(20)]
    assert a[0] == a[1] == a[2]
    rng3 = random.Random(100)
    assert [space.sample(rng3) for _ in range(20)] != [space.sample(random.Random(99)) for _ in range(20)]


def test_fold_ablation_grid():
    space = load_space("fold-ablation")
    grid = space.grid()
    assert len(grid) == 4 * 2 * 3
    assert space.count_distinct() == 4
    folds = {(p["model"]["fold"], p["train"]["weights"], p["train"]["seed"]) for p in grid}
    assert len(folds) == 24
    assert {p["train"]["lr"] for p in grid if p["train"]["weights"] is None} == {0.1}
    assert {p["train"]["lr"] for p in grid if p["train"]["weights"]} == {0.01}
    # replicate seeds are an axis: never de-duplicated, and outermost so seed 0 completes first
    assert len({space.trial_key(p) for p in grid}) == 24
    assert [p["train"]["seed"] for p in grid[:8]] == [0] * 8
    assert space.grid() == grid  # stable order


def test_imagenet_transfer_matches_weights_to_backbone():
    space = load_space("imagenet-transfer")
    grid = space.grid()
    assert len(grid) == 8
    assert space.count_distinct() == 8
    for point in grid:
        weights = point["train"]["weights"]
        depth = sum(point["model"]["num_nodes"])
        assert weights == ("ResNet50_Weights.IMAGENET1K_V2" if depth == 16 else "ResNet152_Weights.IMAGENET1K_V2")
    assert space.data_is_constant() and grid[0]["data"]["name"] == "imagefolder"


def test_counts_of_the_random_spaces():
    assert load_space("quick").count_distinct() == 33744
    assert load_space("cifar10-pareto").count_distinct() == 8360960


def test_spaces_pickle():
    """The sweep's searcher pickles its state, space included, to resume a sweep."""
    import pickle

    for name in BUILTINS:
        space = load_space(name)
        again = pickle.loads(pickle.dumps(space))
        assert again.sample(random.Random(3)) == space.sample(random.Random(3))
        pickle.dumps(space.tune_param_space("random"))
