"""Every built-in space: 1,000 samples are valid, build, meet the budget and respect dependent bounds."""

from __future__ import annotations

import random

import pytest
import torch

from resnetx import ResNetXConfig, build_model, count_flops, count_params
from search_spaces import builtin_spaces, load_space, min_units_per_stage

BUILTINS = ["cifar10-pareto", "fmnist-bench", "fmnist-bench-2", "fmnist-pareto", "fold-ablation",
            "fold-ablation-fmnist", "imagenet-transfer", "quick"]
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
    from sweep.config.experiment import trial_key

    assert len({trial_key(p, space.seed_is_axis) for p in grid}) == 24
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


def _distinct_wirings(totals, folds, min_per_stage) -> int:
    """Brute force: every (split of the total depth over 3 stages, fold, start_id, end_id), wired by
    the seed's pred rule (DESIGN.md §2, re-typed here), counted once per distinct (split, preds)."""
    def pred(node, fold, start, end):
        if fold == 1 or node < start or node > end:
            return node - 1
        return node - 2 * (1 + (node - 1 - (start - fold)) % (fold - 1))

    seen = set()
    for fold in folds:
        low = min_per_stage(fold)
        for n in totals:
            for a in range(low, n + 1):
                for b in range(low, n - a + 1):
                    if n - a - b < low:
                        continue
                    for start in range(fold, n):
                        for end in range(start + 1, n + 1):
                            seen.add(((a, b, n - a - b), tuple(pred(i, fold, start, end) for i in range(1, n + 1))))
    return len(seen)


def test_counts_of_the_random_spaces():
    # quick: (unit, its bottle_scale) x base = 4 x 3 networks per wiring, all widths distinct
    assert load_space("quick").count_distinct() == 12 * _distinct_wirings(range(4, 10), (1, 2, 3), lambda f: 1)
    # cifar10-pareto: unit x bottle_scale x base x shortcut = 5 x 4 x 4 x 2 per wiring (every choice
    # changes some tensor's shape or type: widths int(base*2**i*bs) are distinct, and every network
    # projects at least at the stage boundaries, so the shortcut kind always shows)
    wirings = _distinct_wirings(range(6, 19), (1, 2, 3, 4), lambda f: max(1, 2 * (f - 1)))
    assert load_space("cifar10-pareto").count_distinct() == 160 * wirings


def test_spaces_pickle():
    """The sweep's searcher pickles its state, space included, to resume a sweep."""
    import pickle

    for name in BUILTINS:
        space = load_space(name)
        again = pickle.loads(pickle.dumps(space))
        assert again.sample(random.Random(3)) == space.sample(random.Random(3))
        pickle.dumps(space.tune_param_space("random"))
