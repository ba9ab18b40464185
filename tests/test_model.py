"""The ``ResNetX`` module over its registries: shapes, gradients, memory format, autocast, compile."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from resnetx import ConfigError, ResNetX, ResNetXConfig, build_model, builtin_config, count_params, get_pred
from resnetx.registry import SHORTCUTS, STEMS, UNITS

STEM_CYCLE = ("cifar", "imagenet", "deep")


def small_config(unit: str, stem: str, shortcut: str, fold: int, **extra) -> ResNetXConfig:
    """Three short stages so that fold 4 skips cross two stage boundaries (stride-4 projections)."""
    fields = dict(num_nodes=(2, 3, 2), fold=fold, unit=unit, stem=stem, shortcut=shortcut, base=8, stem_width=8,
                  bottle_scale=2.0 if "bottleneck" in unit else 1.0, num_classes=7)
    return ResNetXConfig(**{**fields, **extra})


CASES = [
    (unit, STEM_CYCLE[(i + fold) % 3], shortcut, fold)
    for i, unit in enumerate(UNITS)
    for shortcut, fold in itertools.product(SHORTCUTS, (1, 2, 3, 4))
]


def test_cases_cover_every_unit_with_every_stem_and_shortcut():
    assert {(u, s) for u, s, _, _ in CASES} == set(itertools.product(UNITS, STEMS))
    assert {(u, s) for u, _, s, _ in CASES} == set(itertools.product(UNITS, SHORTCUTS))


@pytest.mark.parametrize(("unit", "stem", "shortcut", "fold"), CASES)
def test_forward_backward_reaches_every_parameter(unit, stem, shortcut, fold):
    torch.manual_seed(0)
    cfg = small_config(unit, stem, shortcut, fold)
    model = build_model(cfg).train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    # every projection the plan asks for exists, and is used: its weights get a non-zero gradient
    projecting = [n for n in cfg.plan().nodes if n.projects]
    built = [m for m in model.shortcuts if not isinstance(m, nn.Identity)]
    assert len(built) == len(projecting)
    if fold > 1:
        assert any(n.stage != cfg.plan().nodes[n.pred - 1].stage for n in cfg.plan().nodes[1:] if n.skip > 1)
    for node, module in zip(cfg.plan().nodes, model.shortcuts):
        assert isinstance(module, nn.Identity) != node.projects
        for name, param in module.named_parameters():
            assert param.grad.abs().sum() > 0, (node.index, name)


def test_fold_4_small_config_has_a_skip_across_two_stage_boundaries():
    plan = small_config("basic", "cifar", "projection", 4).plan()
    assert any(n.shortcut_stride == 4 for n in plan.nodes)


@pytest.mark.parametrize("shortcut", list(SHORTCUTS))
@pytest.mark.parametrize("side", [31, 33])
def test_odd_input_sizes_agree_between_units_and_multi_stage_shortcuts(shortcut, side):
    """Strided convs round up (ceil(H/s)); so must every shortcut kind, or the addition fails."""
    model = build_model(small_config("basic", "cifar", shortcut, 4)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, side, side)).shape == (1, 7)


@pytest.mark.parametrize("unit", list(UNITS))
def test_channels_last_matches_contiguous(unit):
    torch.manual_seed(1)
    model = build_model(small_config(unit, "cifar", "projection", 3)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("unit", ["bottleneck", "preact_basic", "mbconv"])
def test_cpu_autocast_bf16_forward_backward(unit):
    torch.manual_seed(2)
    model = build_model(small_config(unit, "cifar", "avgpool", 2)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_fullgraph_compile_has_no_graph_breaks_and_matches_eager():
    """The wiring is a tuple of ints fixed at construction: dynamo traces it as one graph.

    ``fullgraph=True`` raises on any graph break; the eager backend keeps the test fast (dynamo's
    tracing is what is under test, not inductor's code generation).
    """
    torch._dynamo.reset()
    torch.manual_seed(3)
    model = build_model(small_config("preact_basic", "cifar", "maxpool", 3)).train()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.randn(2, 3, 32, 32)
    out = compiled(x)
    torch.testing.assert_close(out, model(x))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_seed_example_runs_forward_and_backward():
    """The notebook's mbconv ResNetX (ResNet-152 depths, fold 2 inside stage 3, kernel 5, 100 classes)."""
    torch.manual_seed(4)
    model = build_model("seed-mbconv")
    cfg = model.config
    assert (cfg.num_nodes, cfg.fold, cfg.start_id, cfg.end_id) == ((3, 8, 36, 3), 2, 14, 47)
    assert (cfg.unit, cfg.bottle_scale, cfg.kernel_size, cfg.num_classes) == ("mbconv", 0.5, 5, 100)
    # the notebook's printed first unit: 1x1 64->64, depthwise 5x5, 1x1 64->32
    first = model.units[0]
    assert (first.conv1.in_channels, first.conv1.out_channels, first.conv3.out_channels) == (64, 64, 32)
    assert first.conv2.kernel_size == (5, 5) and first.conv2.groups == 64
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 100)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert count_params(model) == seed_mbconv_params_by_hand()


def seed_mbconv_params_by_hand() -> int:
    """The seed example's parameter count from the layer shapes alone (3,645,924; independent of our modules).

    Stem 7x7 3->64 + BN; per mbconv unit 1x1 in->h, BN, depthwise kxk, BN, 1x1 h->out, BN; a 1x1
    projection + BN wherever the shortcut's source (the seed's get_pred) differs in channels or
    resolution; pre-activation head: BN + linear. Stage i: hidden 64*2**i, output int(hidden*0.5).
    """
    stages, fold, start, end, k, classes = (3, 8, 36, 3), 2, 14, 47, 5, 100
    hidden = [64 * 2 ** i for i in range(4)]
    out = [int(h * 0.5) for h in hidden]
    stage_of = [0] + [i for i, n in enumerate(stages) for _ in range(n)]  # the stem shares stage 0's resolution
    ch = [64] + [out[stage_of[node]] for node in range(1, sum(stages) + 1)]
    total = 3 * 64 * 7 * 7 + 2 * 64
    for node in range(1, sum(stages) + 1):
        h, cin, cout = hidden[stage_of[node]], ch[node - 1], ch[node]
        total += cin * h + 2 * h + h * k * k + 2 * h + h * cout + 2 * cout
        source = get_pred(node, fold, start, end)
        if ch[source] != cout or stage_of[source] != stage_of[node]:
            total += ch[source] * cout + 2 * cout
    return total + 2 * ch[-1] + ch[-1] * classes + classes


def test_zero_init_last_starts_every_unit_at_zero():
    model = build_model(small_config("bottleneck", "cifar", "projection", 2, zero_init_last=True))
    assert all(torch.count_nonzero(unit.last_norm().weight) == 0 for unit in model.units)
    default = build_model(small_config("bottleneck", "cifar", "projection", 2))
    assert all(torch.count_nonzero(unit.last_norm().weight) > 0 for unit in default.units)


def test_pre_activation_nets_end_with_a_norm_post_activation_nets_do_not():
    assert isinstance(build_model(small_config("preact_basic", "cifar", "projection", 1)).head.norm, nn.Sequential)
    assert isinstance(build_model(small_config("basic", "cifar", "projection", 1)).head.norm, nn.Identity)
    assert isinstance(build_model(small_config("basic", "cifar", "projection", 1)).post, nn.ReLU)
    assert isinstance(build_model(small_config("mbconv", "cifar", "projection", 1)).post, nn.Identity)


def test_build_model_accepts_config_mapping_name_and_overrides():
    cfg = small_config("basic", "cifar", "projection", 2)
    a = build_model(cfg, device="meta")
    b = build_model(cfg.to_dict(), device="meta")
    c = build_model("resnet18", device="meta", num_classes=10, c_in=1)
    assert isinstance(a, ResNetX) and a.config == b.config == cfg
    assert c.head.fc.out_features == 10 and c.stem.conv1.in_channels == 1
    assert all(p.device.type == "meta" for p in c.parameters())


def test_drop_rate_adds_dropout_before_the_classifier():
    model = build_model(small_config("basic", "cifar", "projection", 1, drop_rate=0.5))
    assert isinstance(model.head.drop, nn.Dropout) and model.head.drop.p == 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_channels_last_autocast_forward_backward():
    torch.manual_seed(5)
    model = build_model(small_config("bottleneck", "imagenet", "avgpool", 3)).cuda()
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    out.float().square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x).cpu(), model.cpu()(x.cpu()), atol=1e-3, rtol=1e-3)


def test_zeropad_shortcut_keeps_every_stride_th_pixel_and_pads_zero_channels():
    """Option A by hand: a stride-4 skip (two stage boundaries) keeps rows/cols 0, 4, 8, ... of
    ``pred``'s channels and appends zero channels up to the node's width; no parameters."""
    from resnetx.shortcuts import ZeroPadShortcut

    torch.manual_seed(6)
    x = torch.randn(2, 8, 9, 10)
    out = ZeroPadShortcut(8, 32, 4)(x)
    assert out.shape == (2, 32, 3, 3)  # ceil(9/4) x ceil(10/4), as two stride-2 3x3 convs give
    rows, cols = torch.tensor([0, 4, 8]), torch.tensor([0, 4, 8])
    torch.testing.assert_close(out[:, :8], x.index_select(2, rows).index_select(3, cols))
    assert torch.count_nonzero(out[:, 8:]) == 0
    assert sum(p.numel() for p in ZeroPadShortcut(8, 32, 4).parameters()) == 0
    assert torch.equal(ZeroPadShortcut(8, 8, 2)(x), x[:, :, [0, 2, 4, 6, 8]][:, :, :, [0, 2, 4, 6, 8]])  # stride only


@pytest.mark.parametrize("fold", [2, 3, 4])
def test_folded_zeropad_nets_subsample_across_stage_boundaries(fold):
    """Every zero-padded skip delivers pred's activation, subsampled by the stride it spans, at
    the node's shape; forward and backward run, and gradients reach the skipped-from units."""
    from resnetx.shortcuts import ZeroPadShortcut

    torch.manual_seed(7)
    cfg = builtin_config("cifar-resnet20").replace(fold=fold, start_id=fold)
    model = build_model(cfg).train()
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    unit_shapes: dict[int, torch.Size] = {}
    for node, (unit, shortcut) in enumerate(zip(model.units, model.shortcuts), 1):
        unit.register_forward_hook(lambda m, i, o, node=node: unit_shapes.__setitem__(node, o.shape))
        if isinstance(shortcut, ZeroPadShortcut):
            shortcut.register_forward_hook(lambda m, i, o, node=node: seen.__setitem__(node, (i[0].detach(), o)))
    x = torch.randn(2, 3, 31, 32)  # odd height: ceil rounding must agree with the strided convs
    model(x).square().mean().backward()
    strides = {n.index: n.shortcut_stride for n in cfg.plan().nodes if n.projects}
    assert set(seen) == set(strides) and (fold < 4 or 4 in strides.values())
    for node, (inp, out) in seen.items():
        s = strides[node]
        assert out.shape == unit_shapes[node]
        assert out.shape[2:] == (math.ceil(inp.shape[2] / s), math.ceil(inp.shape[3] / s))
        torch.testing.assert_close(out[:, :inp.shape[1]], inp[:, :, ::s, ::s])
        assert torch.count_nonzero(out[:, inp.shape[1]:]) == 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert count_params(model) == count_params("cifar-resnet20")  # folding adds no parameter here


def test_zeropad_refuses_a_skip_into_a_narrower_node():
    with pytest.raises(ConfigError, match=r"^shortcut: got 'zeropad'; pads channels and cannot drop them: node 1"):
        ResNetXConfig(num_nodes=(2, 2), unit="basic", bottle_scale=1.0, stem="cifar", stem_width=32, base=16,
                      shortcut="zeropad")
    # the same widths with a projection are fine, and so is zeropad when the stem is no wider
    ResNetXConfig(num_nodes=(2, 2), unit="basic", bottle_scale=1.0, stem="cifar", stem_width=32, base=16)
    ResNetXConfig(num_nodes=(2, 2), unit="basic", bottle_scale=1.0, stem="cifar", stem_width=16, base=16,
                  shortcut="zeropad")
