"""``ResNetXConfig``: validation, aliases, plain-data round trips and the canonical hash."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from resnetx import ConfigError, ResNetXConfig, builtin_config, builtin_names, count_params

SMALL = dict(num_nodes=(2, 3, 2), unit="basic", stem="cifar", base=8, stem_width=8, bottle_scale=1.0,
             num_classes=10)


# --- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*builtin_names(), "resnet50-fold3", "resnet18-fold2"])
def test_builtin_configs_round_trip_through_yaml_and_json(name):
    cfg = builtin_config(name)
    plain = cfg.to_dict()
    assert ResNetXConfig(**plain) == cfg
    assert ResNetXConfig.from_yaml(cfg.to_yaml()) == cfg
    assert ResNetXConfig(**json.loads(json.dumps(plain))) == cfg
    assert yaml.safe_load(cfg.to_yaml()) == plain  # plain YAML: no python tags, no tuples
    assert "!!python" not in cfg.to_yaml()
    assert ResNetXConfig.from_yaml(cfg.to_yaml()).canonical_hash() == cfg.canonical_hash()


def test_round_trip_keeps_every_field_of_a_non_default_config():
    cfg = ResNetXConfig(num_nodes=(1, 2, 5), fold=3, start_id=4, end_id=7, unit="mbconv", stem="deep",
                        shortcut="avgpool", stem_width=24, base=16, exp=1.5, bottle_scale=0.5, kernel_size=5,
                        first_downsample=True, in_channels=1, num_classes=7, drop_rate=0.1, zero_init_last=True)
    again = ResNetXConfig.from_yaml(cfg.to_yaml())
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_from_yaml_rejects_a_non_mapping_in_one_line():
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        ResNetXConfig.from_yaml("- 1\n- 2\n")
    assert "\n" not in str(info.value)


# --- aliases -----------------------------------------------------------------------------------
def test_seed_aliases_are_accepted_and_written_back_under_the_field_names():
    cfg = ResNetXConfig(ni=32, c_in=1, c_out=10)
    assert (cfg.stem_width, cfg.in_channels, cfg.num_classes) == (32, 1, 10)
    assert {"stem_width", "in_channels", "num_classes"} <= set(cfg.to_dict())
    assert not {"ni", "c_in", "c_out"} & set(cfg.to_dict())
    assert cfg == ResNetXConfig(stem_width=32, in_channels=1, num_classes=10)


def test_replace_accepts_aliases():
    assert builtin_config("resnet18").replace(c_out=10).num_classes == 10


def test_a_field_given_under_both_names_is_an_error_naming_the_alias():
    with pytest.raises(ConfigError, match=r"^ni: got 32; is an alias of stem_width"):
        ResNetXConfig(ni=32, stem_width=16)


# --- canonical hash ------------------------------------------------------------------------------
def test_fold_1_hashes_the_same_whatever_the_start_and_end_ids():
    base = ResNetXConfig(**SMALL)
    hashes = {ResNetXConfig(**SMALL, start_id=s, end_id=e).canonical_hash()
              for s in range(1, 8) for e in [None, *range(s, 8)]}
    assert hashes == {base.canonical_hash()}


def test_bottle_scales_that_round_to_the_same_widths_hash_the_same():
    a = ResNetXConfig(num_nodes=(1, 1), base=64, bottle_scale=4.0)
    b = ResNetXConfig(num_nodes=(1, 1), base=64, bottle_scale=4.001)  # int(128*4.001) == 512
    c = ResNetXConfig(num_nodes=(1, 1), base=64, bottle_scale=4.01)  # int(128*4.01) == 513
    assert a.plan().out_widths == b.plan().out_widths != c.plan().out_widths
    assert a.canonical_hash() == b.canonical_hash() != c.canonical_hash()
    assert a != b  # the configs themselves stay distinct: only the hash identifies the network


def test_fold_ranges_that_produce_the_same_wiring_hash_the_same():
    # with fold=2 the skip is always 2 nodes back, so a window ending at the last node
    # is the same whether end_id is given or left to default
    a = ResNetXConfig(**SMALL, fold=2, start_id=3)
    b = ResNetXConfig(**SMALL, fold=2, start_id=3, end_id=7)
    assert a.canonical_hash() == b.canonical_hash()


@pytest.mark.parametrize(
    "change",
    [dict(fold=2, start_id=2), dict(fold=2, start_id=3), dict(fold=3, start_id=3), dict(unit="preact_basic"),
     dict(stem="deep"), dict(base=16), dict(exp=3.0), dict(bottle_scale=2.0), dict(kernel_size=5),
     dict(first_downsample=True), dict(in_channels=1), dict(num_classes=11), dict(num_nodes=(2, 2, 2)),
     dict(stem_width=16), dict(drop_rate=0.2), dict(zero_init_last=True)],
)
def test_configs_that_build_different_networks_hash_differently(change):
    base = ResNetXConfig(**SMALL)
    assert base.canonical_hash() != ResNetXConfig(**{**SMALL, **change}).canonical_hash()


def test_shortcut_kind_matters_only_when_something_projects():
    no_projection = dict(SMALL, base=8, stem_width=8, num_nodes=(3,))
    assert not any(n.projects for n in ResNetXConfig(**no_projection).plan().nodes)
    assert (ResNetXConfig(**no_projection, shortcut="avgpool").canonical_hash()
            == ResNetXConfig(**no_projection, shortcut="projection").canonical_hash())
    assert (ResNetXConfig(**SMALL, shortcut="avgpool").canonical_hash()
            != ResNetXConfig(**SMALL, shortcut="projection").canonical_hash())


def test_equal_hashes_mean_equal_parameter_counts_over_a_grid():
    """The hash's promise, checked where we can: same hash -> same parameter count."""
    seen: dict[str, int] = {}
    for fold in (1, 2, 3):
        for start in range(max(fold, 1), 6):
            for end in (None, 6, 7):
                for scale in (1.0, 1.01):
                    try:
                        cfg = ResNetXConfig(**{**SMALL, "bottle_scale": scale}, fold=fold, start_id=start, end_id=end)
                    except ConfigError:
                        continue
                    params = count_params(cfg)
                    assert seen.setdefault(cfg.canonical_hash(), params) == params
    assert len(seen) > 10


def test_canonical_hash_is_stable_text():
    h = builtin_config("resnet50").canonical_hash()
    assert len(h) == 12 and set(h) <= set("0123456789abcdef")
    # by hand: torchvision's ResNet-50 (bottleneck units 3-4-6-3, widths 64..512 expanded 4x, stride 2
    # from the second stage, every shortcut from the node before), 12 hex digits of SHA-256 over the
    # sorted, compact JSON of its canonical form
    resnet50 = {"unit": "bottleneck", "stem": "imagenet", "shortcut": "projection", "in_channels": 3,
                "num_classes": 1000, "stem_width": 64, "num_nodes": [3, 4, 6, 3],
                "hidden_widths": [64, 128, 256, 512], "out_widths": [256, 512, 1024, 2048],
                "strides": [1, 2, 2, 2], "kernel_size": 3, "preds": list(range(16)), "drop_rate": 0.0,
                "zero_init_last": False}
    blob = json.dumps(resnet50, sort_keys=True, separators=(",", ":")).encode()
    assert h == hashlib.sha256(blob).hexdigest()[:12]
    cfg = builtin_config("resnet50")
    assert cfg.replace(start_id=5, end_id=9).canonical_hash() == h  # fold 1: the ids wire nothing
    assert cfg.replace(num_classes=10).canonical_hash() != h
    assert h == ResNetXConfig(**builtin_config("resnet50").to_dict()).canonical_hash()


# --- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "value", "allowed"),
    [
        (dict(fold=0), "fold", "0", ">= 1"),
        (dict(fold=-2), "fold", "-2", ">= 1"),
        (dict(fold=3, start_id=2), "start_id", "2", ">= fold"),
        (dict(start_id=0), "start_id", "0", ">= fold"),
        (dict(start_id=20), "start_id", "20", "<= the last node (16)"),
        (dict(end_id=17), "end_id", "17", "<= the last node (16)"),
        (dict(fold=2, start_id=5, end_id=5), "end_id", "5", "> start_id"),
        (dict(fold=1, start_id=5, end_id=3), "end_id", "3", ">= start_id"),
        (dict(unit="resnext"), "unit", "'resnext'", "basic, bottleneck"),
        (dict(stem="vit"), "stem", "'vit'", "imagenet, deep, cifar"),
        (dict(shortcut="dense"), "shortcut", "'dense'", "projection, avgpool, maxpool"),
        (dict(base=-64), "base", "-64", "> 0"),
        (dict(stem_width=0), "stem_width", "0", "> 0"),
        (dict(in_channels=-3), "in_channels", "-3", "> 0"),
        (dict(num_classes=0), "num_classes", "0", "> 0"),
        (dict(exp=-2.0), "exp", "-2.0", "> 0"),
        (dict(bottle_scale=0), "bottle_scale", "0", "> 0"),
        (dict(bottle_scale=0.001), "bottle_scale", "0.001", "width"),
        (dict(num_nodes=(3, 0, 6, 3)), "num_nodes.1", "0", ">= 1"),
        (dict(num_nodes=(3, -1)), "num_nodes.1", "-1", ">= 1"),
        (dict(num_nodes=()), "num_nodes", "[]", "at least one stage"),
        (dict(num_nodes=(3, 2.5)), "num_nodes.1", "2.5", "integer"),
        (dict(num_nodes=("3", 4)), "num_nodes.0", "'3'", "integer"),
        (dict(num_nodes=(True, 4)), "num_nodes.0", "True", "integer"),
        (dict(num_nodes=3), "num_nodes", "3", "tuple"),
        (dict(fold=2.0), "fold", "2.0", "integer"),
        (dict(fold="2"), "fold", "'2'", "integer"),
        (dict(first_downsample="yes"), "first_downsample", "'yes'", "bool"),
        (dict(kernel_size=4), "kernel_size", "4", "odd"),
        (dict(kernel_size=0), "kernel_size", "0", "odd"),
        (dict(drop_rate=1.0), "drop_rate", "1.0", "[0, 1)"),
        (dict(exp="2"), "exp", "'2'", "number"),
        (dict(widht=64), "widht", "64", "unknown key"),
        (dict(GRAPH={"FOLD": 2}), "GRAPH", "", "unknown key"),
    ],
)
def test_bad_configs_raise_one_line_value_errors_naming_field_value_and_allowed(fields, field, value, allowed):
    with pytest.raises(ValueError) as info:
        ResNetXConfig(**fields)
    err = info.value
    assert isinstance(err, ConfigError)
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{field}: got {value}"), message
    assert allowed in message, message
    assert err.field == field


def test_configs_are_immutable():
    cfg = ResNetXConfig()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error type is internal
        cfg.fold = 3  # type: ignore[misc]


def test_start_and_end_defaults_are_the_whole_network():
    cfg = ResNetXConfig(num_nodes=(3, 4, 6, 3), fold=3)
    assert (cfg.effective_start_id, cfg.effective_end_id) == (3, 16)


def test_widths_follow_base_exp_and_bottle_scale():
    cfg = ResNetXConfig(num_nodes=(1, 1, 1, 1), base=64, exp=2, bottle_scale=0.5)
    plan = cfg.plan()
    assert plan.hidden_widths == (64, 128, 256, 512)
    assert plan.out_widths == (32, 64, 128, 256)


def test_unknown_builtin_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="resnet50") as info:
        builtin_config("resnet51")
    assert "resnet51" in str(info.value)


def test_resume_names_the_options_it_ignores():
    from sweep.config.settings import SweepSettings
    from sweep.tune.runner import ignored_on_resume

    resumed = SweepSettings(num_samples=24, seed=3)  # what the interrupted sweep recorded
    given = SweepSettings(resume=True, num_samples=200, seed=3, experiment="other")
    assert ignored_on_resume(given, resumed) == ["num_samples=200 (runs with 24)"]  # experiment is the resume's own
    assert ignored_on_resume(SweepSettings(resume=True), resumed) == []  # defaults are not "given"
