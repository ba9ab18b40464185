"""De-duplication is exact: distinct networks counted by hand, trial keys, and the factorised count."""

from __future__ import annotations

import random
import textwrap

import pytest

from search_spaces import counting, parse_space_text
from sweep.config.experiment import trial_key

HEAD = """
name: hand
model:
  stem: cifar
  in_channels: 1
  num_classes: 10
  stem_width: 8
"""


def space(body: str):
    return parse_space_text(textwrap.dedent(HEAD) + body.lstrip("\n"), "hand.yaml")


# Two stages of two units (nodes 1..4). fold 1: every (start, end) gives preds (0, 1, 2, 3): one
# network from 6 points. fold 2 folds [start, end] to pred = l - 2:
#   (2, 3) -> (0, 0, 1, 3)   (2, 4) -> (0, 0, 1, 2)   (3, 4) -> (0, 1, 1, 2)
# so 1 + 3 = 4 wirings. Two units double that; bottle_scale 1.05 rounds to the same widths as
# 1.0 (int(8 * 1.05) == 8, int(16 * 1.05) == 16), so it adds nothing: 8 networks from 36 points.
TWO_STAGES = """
  num_nodes: [2, 2]
  base: 8
  unit: {grid: [basic, mbconv]}
  bottle_scale: {grid: [1.0, 1.05]}
  fold: {grid: [1, 2]}
  start_id: {low: fold, high: last_node - 1}
  end_id: {low: start_id + 1, high: last_node}
"""

# One stage of four units, stem width 8. With base 8 no node ever projects (same width, stride
# 1, even the skips to the stem), so the shortcut kind does not matter: 4 wirings. With base 16
# node 1 projects, so each shortcut kind is its own network: 4 * 2. Total 12, from 36 points.
ONE_STAGE = """
  num_nodes: [4]
  unit: basic
  bottle_scale: 1.0
  base: {grid: [8, 16]}
  shortcut: {grid: [projection, avgpool]}
  fold: {grid: [1, 2]}
  start_id: {low: fold, high: last_node - 1}
  end_id: {low: start_id + 1, high: last_node}
"""


def all_points(s) -> list[dict]:
    """Every point, enumerated independently of the code under test (start/end by hand)."""
    import itertools

    grids = {f.name: f.grid for f in s.fields if f.kind == "grid"}
    base = {f.name: f.value for f in s.fields if f.kind == "constant"}
    names = list(grids)
    points = []
    for combo in itertools.product(*(grids[n] for n in names)):
        values = {**base, **dict(zip(names, combo))}
        last = sum(values["model.num_nodes"])
        for start in range(values["model.fold"], last):
            for end in range(start + 1, last + 1):
                model = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("model.")}
                points.append({"model": {**model, "start_id": start, "end_id": end}, "data": {}, "train": {}})
    return points


@pytest.mark.parametrize(("body", "points", "networks"), [(TWO_STAGES, 36, 8), (ONE_STAGE, 36, 12)])
def test_hand_counted_spaces(body, points, networks):
    s = space(body)
    everything = all_points(s)
    assert len(everything) == points
    assert s.count_distinct() == networks
    # trial keys de-duplicate exactly the same points (data and training are equal here)
    assert len({key_of(s, p) for p in everything}) == networks
    # and the networks really differ: parameter counts or wiring tell every class apart
    from resnetx import ResNetXConfig

    assert len({ResNetXConfig(**p["model"]).canonical_hash() for p in everything}) == networks


def test_brute_force_agrees_with_the_factorised_count(monkeypatch):
    s = space(TWO_STAGES.replace("num_nodes: [2, 2]", "num_nodes: {split: {low: 3, high: 7}, stages: 3}")
              .replace("fold: {grid: [1, 2]}", "fold: {low: 1, high: 2}"))
    factorised = s.count_distinct()

    def refuse(*args, **kwargs):
        raise counting.Mismatch

    monkeypatch.setattr(counting, "_factorised", refuse)
    assert s.count_distinct() == factorised > 100


def test_continuous_model_fields_are_infinite_but_training_ranges_are_not_networks():
    s = space(TWO_STAGES.replace("bottle_scale: {grid: [1.0, 1.05]}", "bottle_scale: {low: 0.5, high: 2.0}"))
    assert s.count_distinct() is None
    s = space(TWO_STAGES + "train:\n  lr: {low: 0.01, high: 0.1}\n")
    assert s.count_distinct() == 8


def test_trial_key_rules():
    s = space(TWO_STAGES)
    cfg = s.sample(random.Random(0))
    cfg["train"] = {"lr": 0.1, "seed": 1, "device": "cpu", "num_threads": 1, "compile": False}
    key = key_of(s, cfg)
    same = {**cfg, "train": {"lr": 0.1, "seed": 2, "device": "cuda", "num_threads": 4, "compile": True}}
    assert key_of(s, same) == key  # where and how fast a trial runs does not change what it trains
    assert key_of(s, {**cfg, "train": {**cfg["train"], "lr": 0.2}}) != key
    assert key_of(s, {**cfg, "data": {"name": "digits", "download": True}}) == \
        key_of(s, {**cfg, "data": {"name": "digits", "download": False}})
    fold1 = {**cfg, "model": {**cfg["model"], "fold": 1, "start_id": 1, "end_id": 2}}
    fold1_other_ids = {**cfg, "model": {**cfg["model"], "fold": 1, "start_id": 3, "end_id": 4}}
    assert key_of(s, fold1) == key_of(s, fold1_other_ids)  # same network


def test_replicate_seeds_stay_distinct():
    assert space(TWO_STAGES + "replicates: 3\n").seed_is_axis
    assert not space(TWO_STAGES).seed_is_axis
    s = space(TWO_STAGES.replace("start_id: {low: fold, high: last_node - 1}", "start_id: {expr: fold}")
              .replace("end_id: {low: start_id + 1, high: last_node}", "end_id: {expr: last_node}")
              + "replicates: 3\n")
    grid = s.grid()
    assert len(grid) == 3 * 2 * 2 * 2
    assert [p["train"]["seed"] for p in grid] == [0] * 8 + [1] * 8 + [2] * 8
    keys = [key_of(s, p) for p in grid]
    assert len(set(keys)) == 3 * 4  # bottle_scale 1.05 == 1.0; seeds never merge
    assert s.count_distinct() == 4


def test_grid_refuses_random_fields():
    from resnetx.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^space: got 'hand'; is not a grid \(model.start_id, model.end_id drawn"):
        space(TWO_STAGES).grid()


def key_of(space, config):
    """The sweep's one de-duplication key (``sweep.config.experiment.trial_key``) for a point of ``space``."""
    return trial_key(config, space.seed_is_axis)
