"""Parity with torchvision's ResNets and loading their checkpoints into folded nets."""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest
import torch
import torchvision

from resnetx import ConfigError, build_model, count_params, load_torchvision_weights
from resnetx.pretrained import torchvision_key_map
from resnetx.wiring import stage_of

SHORTCUT_TENSORS = ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                    "bn.num_batches_tracked")


@functools.lru_cache(maxsize=2)
def torchvision_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    # non-trivial BN statistics, so that a mis-mapped buffer would change the outputs
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model


# --- fold = 1 is torchvision's ResNet --------------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_fold_1_is_torchvision_resnet(name):
    tv = torchvision_model(name)
    state = tv.state_dict()
    ours = build_model(name).eval()
    assert count_params(ours) == count_params(tv) == sum(p.numel() for p in tv.parameters())
    assert count_params(name) == count_params(tv)  # counted on the meta device from the name alone

    report = load_torchvision_weights(ours, state)
    assert report.fresh == [] and report.unused == []
    assert len(report.loaded) == len(state) == len(ours.state_dict())

    # the key map alone is a strict one-to-one load (built on meta: tensors are assigned, not copied)
    key_map = torchvision_key_map(ours)
    assert sorted(key_map) == sorted(state)
    mapped = build_model(name, device="meta")
    mapped.load_state_dict({key_map[k]: v for k, v in state.items()}, strict=True, assign=True)

    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = tv(x)
        assert (ours(x) - expected).abs().max().item() <= 1e-4
        assert (mapped.eval()(x) - expected).abs().max().item() <= 1e-4


# --- fold > 1: every unit and stem tensor loads; exactly the new projections stay fresh ------------
def expected_fresh_and_unused(model, state):
    """Independent of the loader: from the plan and torchvision's naming (layer{s}.0.downsample)."""
    cfg = model.config
    first_of_stage = {}
    index = 1
    for stage, count in enumerate(cfg.num_nodes):
        first_of_stage[index] = stage
        index += count
    widths = {-1: cfg.stem_width, **dict(enumerate(cfg.plan().out_widths))}
    fresh, taken = set(), set()
    for node in cfg.plan().nodes:
        if not node.projects:
            continue
        prefix = f"shortcuts.{node.index - 1}."
        stage = first_of_stage.get(node.index)
        tv_conv = f"layer{stage + 1}.0.downsample.0.weight" if stage is not None else None
        ours_shape = (node.out_channels, widths[stage_of(node.pred, cfg.num_nodes)], 1, 1)
        if tv_conv in state and tuple(state[tv_conv].shape) == ours_shape:
            taken |= {f"layer{stage + 1}.0.downsample.{k}" for k in (
                "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked")}
        else:
            fresh |= {prefix + t for t in SHORTCUT_TENSORS}
    unused = {k for k in state if ".downsample." in k} - taken
    return fresh, unused


@pytest.mark.parametrize(("name", "tv_name"), [("resnet18-fold2", "resnet18"), ("resnet50-fold3", "resnet50"),
                                               ("resnet18-fold4", "resnet18")])
def test_folded_nets_load_every_unit_and_stem_tensor(name, tv_name):
    state = torchvision_model(tv_name).state_dict()
    model = build_model(name)
    fresh, unused = expected_fresh_and_unused(model, state)
    assert fresh, "a folded net should have projections torchvision lacks"

    report = load_torchvision_weights(model, state)
    assert set(report.fresh) == fresh
    assert set(report.unused) == unused
    assert len(report.fresh) == len(set(report.fresh))
    ours = model.state_dict()
    for key in ours:
        if key.startswith(("stem.", "units.", "head.")):
            assert key in report.loaded, key
    key_map = {v: k for k, v in torchvision_key_map(model).items()}
    for key in report.loaded:
        assert torch.equal(ours[key], state[key_map[key]]), key
    assert set(report.loaded) | set(report.fresh) == set(ours)
    assert set(report.loaded).isdisjoint(report.fresh)


def test_a_norm_loads_only_with_the_conv_that_feeds_it():
    """kernel_size=5 changes every bottleneck conv2 but no bn2: bn2 must not load without conv2."""
    state = torchvision_model("resnet50").state_dict()
    model = build_model("resnet50", kernel_size=5)
    report = load_torchvision_weights(model, state)
    fresh_modules = {k.rsplit(".", 1)[0] for k in report.fresh}
    assert fresh_modules == {f"units.{i}.{m}" for i in range(16) for m in ("conv2", "bn2")}
    assert all(f"units.{i}.{m}.weight" in report.loaded for i in range(16) for m in ("conv1", "bn1", "conv3", "bn3"))
    assert {k.rsplit(".", 1)[0] for k in report.unused} == {
        f"layer{s + 1}.{b}.{m}" for s, n in enumerate((3, 4, 6, 3)) for b in range(n) for m in ("conv2", "bn2")}


def test_resized_classifier_stays_fresh_and_is_reported():
    state = torchvision_model("resnet18").state_dict()
    report = load_torchvision_weights(build_model("resnet18", num_classes=10), state)
    assert set(report.fresh) == {"head.fc.weight", "head.fc.bias"}
    assert set(report.unused) == {"fc.weight", "fc.bias"}
    assert report.summary() == f"loaded {len(state) - 2} tensors, 2 fresh, 2 unused"


# --- sources ------------------------------------------------------------------------------------
def test_local_pth_file_loads(tmp_path: Path):
    state = torchvision_model("resnet18").state_dict()
    plain, wrapped = tmp_path / "resnet18.pth", tmp_path / "ckpt.pt"
    torch.save(state, plain)
    torch.save({"state_dict": state, "epoch": 3}, wrapped)
    for source in (plain, str(plain), wrapped):
        model = build_model("resnet18")
        report = load_torchvision_weights(model, source)
        assert report.fresh == [] and report.unused == []
        assert torch.equal(model.state_dict()["units.7.conv2.weight"], state["layer4.1.conv2.weight"])


class Payload:  # a pickled custom object: weights_only=True must refuse it
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pth_holding_a_pickled_object_is_refused_in_one_line(tmp_path: Path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(ConfigError, match=r"^weights: got .*evil\.pth'; not a plain tensor checkpoint") as info:
        load_torchvision_weights(build_model("resnet18", device="meta"), path)
    assert "\n" not in str(info.value)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("source", "match"),
    [("missing.pth", "file not found"), ("nonsense", "torchvision weights name"),
     ("ResNet50_Weights.NOPE", "torchvision weights name")],
)
def test_bad_sources_are_config_errors(tmp_path: Path, monkeypatch, source, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match):
        load_torchvision_weights(build_model("resnet18", device="meta"), source)


def test_pth_holding_a_tensor_not_a_state_dict_is_refused(tmp_path: Path):
    torch.save(torch.zeros(3), tmp_path / "t.pth")
    with pytest.raises(ConfigError, match="must hold a state dict"):
        load_torchvision_weights(build_model("resnet18", device="meta"), tmp_path / "t.pth")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["ResNet18_Weights.IMAGENET1K_V1", "resnet18"])
def test_torchvision_weights_name_offline_fails_fast_mentioning_download(tmp_path, monkeypatch, name):
    """No network here (and none forced in CI): the loader must answer, not hang or traceback."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached checkpoint to fall back on

    def offline(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    monkeypatch.setattr(socket.socket, "connect", offline)
    with pytest.raises(ConfigError, match="download") as info:
        load_torchvision_weights(build_model("resnet18", device="meta"), name)
    assert "\n" not in str(info.value)


def test_only_torchvision_style_units_accept_torchvision_weights():
    state = torchvision_model("resnet18").state_dict()
    with pytest.raises(ConfigError, match=r"^unit: got 'preact_basic'; .*basic, bottleneck"):
        load_torchvision_weights(build_model("resnet18", unit="preact_basic"), state)


# --- freezing -------------------------------------------------------------------------------------
def test_freeze_modes():
    state = torchvision_model("resnet18").state_dict()

    model = build_model("resnet18-fold2", num_classes=10)
    load_torchvision_weights(model, state, freeze="none")
    assert all(p.requires_grad for p in model.parameters())

    model = build_model("resnet18-fold2", num_classes=10)
    report = load_torchvision_weights(model, state, freeze="backbone")
    for name, param in model.named_parameters():
        backbone_loaded = name in report.loaded and not name.startswith("head.")
        assert param.requires_grad == (not backbone_loaded), name
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in report.fresh if n in dict(model.named_parameters())}
    assert any(n.startswith("shortcuts.") for n in trainable) and "head.fc.weight" in trainable

    # with the 1000-class head loaded, "backbone" still leaves the classifier trainable
    model = build_model("resnet18-fold2")
    load_torchvision_weights(model, state, freeze="backbone")
    assert model.head.fc.weight.requires_grad and not model.units[0].conv1.weight.requires_grad

    # "all" is the seed's feature extraction: the whole pretrained network frozen, only the head
    # trains -- fresh shortcut projections included in the frozen part.
    model = build_model("resnet18-fold2", num_classes=10)
    load_torchvision_weights(model, state, freeze="all")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.fc.weight", "head.fc.bias"}

    with pytest.raises(ConfigError, match=r"^freeze: got 'some'; must be one of none, backbone, all"):
        load_torchvision_weights(model, state, freeze="some")  # type: ignore[arg-type]
