"""The fixed hypervolume reference at the sweep's own image size (issue 21).

A space's FLOP budget (and a FLOP ``reference:``) is stated at the space's ``input_size``; the
trials report FLOPs at the size they train at (``--set data.image_size=28``). The reference's
FLOP bound must lie above every network the budget admits, at that size: checked here against
FLOPs counted independently, by building each network and running ``resnetx.count_flops``.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from reports.pareto import parse_objectives
from resnetx import count_flops
from search_spaces import load_space
from search_spaces.walk import build_model_config
from sweep.config.settings import SweepSettings
from sweep.tune.runner import hv_reference, plan_sweep, trial_image_sizes

ACC_FLOPS = [SimpleNamespace(name="val_acc", maximize=True), SimpleNamespace(name="flops", maximize=False)]

DEEP = """
name: deep-levels
objectives: [val_acc:max, flops:min]
budget:
  max_flops: 50000000
model:
  stem: cifar
  in_channels: 1
  num_classes: 10
  unit: {choice: [basic, bottleneck, mbconv]}
  base: {choice: [8, 16]}
  stem_width: 8
  num_nodes: [1, 1, 1, 1]
  first_downsample: true
data:
  name: fashion_mnist
  image_size: 16
"""


def _flops(config: dict, side: int) -> int:
    model = build_model_config(config["model"])
    return count_flops(model, (model.in_channels, side, side))


def test_the_flops_bound_at_28_lies_above_every_network_counted_at_28():
    space = load_space("fmnist-pareto")
    assert space.input_size == (1, 16, 16) and space.max_flops == 24_000_000
    values, source = space.reference_point(ACC_FLOPS, num_classes=10, image_sizes=[28])
    rng = random.Random(0)
    configs = [space.sample(rng) for _ in range(40)]  # within the budget at 16x16
    largest = max(configs, key=lambda c: _flops(c, 16))
    at_28 = [_flops(c, 28) for c in configs]
    assert max(at_28) > space.max_flops  # the old reference (the budget itself) is below them
    assert all(f < values[1] for f in at_28)
    # and the bound is the budget grown by the largest level-area ratio, not a blanket factor
    assert values[1] == pytest.approx(space.max_flops * (28 / 16) ** 2)  # 16 -> 8 -> 4 and 28 -> 14 -> 7
    assert _flops(largest, 28) / _flops(largest, 16) <= (28 / 16) ** 2
    assert "24,000,000 at 16x16" in source and "28x28" in source
    # without image sizes (or at the space's own size) the reference is the budget, as before
    assert space.reference_point(ACC_FLOPS, 10)[0] == space.reference_point(ACC_FLOPS, 10, [16])[0] == [0.1, 24e6]


def test_where_areas_do_not_scale_evenly_the_bound_follows_the_deepest_level(tmp_path):
    """Four strided stages: 28 -> 14 -> 7 -> 4 -> 2 against 16 -> 8 -> 4 -> 2 -> 1. The deepest
    areas grow 4x, so FLOPs grow more than (28/16)^2: that factor would not bound them."""
    (tmp_path / "deep.yaml").write_text(DEEP)
    space = load_space(str(tmp_path / "deep.yaml"))
    assert space.deepest_level() == 4 and space.flops_scale([28]) == 4.0
    ratios = [_flops(c, 28) / _flops(c, 16) for c in space.every_point()]
    assert max(ratios) > (28 / 16) ** 2 and max(ratios) <= 4.0
    values, _ = space.reference_point(ACC_FLOPS, num_classes=10, image_sizes=[28])
    assert all(_flops(c, 28) < values[1] for c in space.every_point()) and values[1] == 4 * 50_000_000


def test_the_sweep_records_the_reference_at_its_image_size(tmp_path):
    settings = SweepSettings(space="fmnist-pareto", objectives="val_acc:max,flops:min", runs_dir=str(tmp_path),
                             sets=("data.image_size=28",))
    plan = plan_sweep(settings)
    assert trial_image_sizes(plan) == [28]
    values, _ = hv_reference(plan)
    assert values == [0.1, 24e6 * (28 / 16) ** 2]
    default = plan_sweep(SweepSettings(space="fmnist-pareto", objectives="val_acc:max,flops:min",
                                       runs_dir=str(tmp_path)))
    assert trial_image_sizes(default) == [16] and hv_reference(default)[0] == [0.1, 24e6]


@pytest.mark.slow
def test_a_sweep_at_28x28_has_a_positive_hypervolume_with_every_trial_inside_the_reference(tmp_path):
    """A real sweep (the stand-in trainable reports each network's real FLOPs at 28x28) and its report."""
    from sweep.api import run_sweep

    result = run_sweep("fmnist-pareto", overrides={"data.image_size": 28, "train.epochs": 1, "data.subset": 200},
                       objectives="val_acc:max,flops:min", trainable="synthetic", search="random", num_samples=4,
                       max_concurrent=2, seed=0, runs_dir=str(tmp_path), summary=False)
    report = result.outcome.report
    trials = result.trials("val_acc:max,flops:min")
    finished = trials[trials["status"] == "finished"]
    assert len(finished) == 4
    assert report.reference == [0.1, 24e6 * (28 / 16) ** 2]
    assert (finished["flops"] < report.reference[1]).all() and finished["flops"].max() > 24e6
    assert report.hypervolume > 0
    assert parse_objectives("val_acc:max,flops:min") == report.objectives
