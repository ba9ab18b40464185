"""The wiring of a folded ResNet: ``get_pred``/``layer_diff`` as in the seed, and the plan built on them.

The seed's two functions are copied below verbatim (asserts and all) as the oracle: our
versions must agree with them wherever the seed accepts its arguments.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from resnetx import ResNetXConfig, build_model, builtin_config, get_pred, layer_diff
from resnetx.wiring import stage_of


# --- the seed notebook's code, verbatim except for names and formatting -------------------------
def seed_get_pred(l, d=1, start_id=None, end_id=None):  # noqa: E741
    if start_id is None:
        start_id = d
    if end_id is None:
        end_id = l
    assert l >= 1 and start_id >= d and end_id > start_id
    if l < start_id or l > end_id or d == 1:
        pred = l - 1
    else:
        remainder = (l - 1 - (start_id - d)) % (d - 1)
        pred = l - 2 * (1 + remainder)
    return pred


def seed_layer_diff(cur, pred, num_nodes):
    assert cur > pred
    num_nodes = (1, *num_nodes)
    cumsum = 0
    for i, num in enumerate(num_nodes):
        if cumsum <= cur < cumsum + num:
            cur_layer = i
        if cumsum <= pred < cumsum + num:
            pred_layer = i
        cumsum += num
    return cur_layer - pred_layer


# --- the seed's examples --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [((17, 2, 13), 15), ((50, 5, 8), 44), ((12, 1, 1), 11), ((8, 5, 7), 4), ((12, 4, 6), 10)],
)
def test_get_pred_seed_examples(args, expected):
    assert get_pred(*args) == expected
    assert seed_get_pred(*args) == expected  # the oracle copy is faithful


def test_layer_diff_seed_example():
    assert layer_diff(4, 0, (3, 4, 6, 3)) == 2


def test_get_pred_matches_seed_everywhere():
    """Every (l, fold, start, end) the seed accepts, up to 40 nodes and fold 6."""
    checked = 0
    for fold in range(1, 7):
        for start in range(fold, 30):
            for end in range(start + 1, 41):
                for l in range(1, 41):  # noqa: E741
                    assert get_pred(l, fold, start, end) == seed_get_pred(l, fold, start, end), (l, fold, start, end)
                    checked += 1
    assert checked > 50_000


def test_layer_diff_matches_seed_everywhere():
    for num_nodes in [(3, 4, 6, 3), (2, 2, 2, 2), (1, 1, 1), (5,), (3, 8, 36, 3)]:
        total = sum(num_nodes)
        for cur in range(1, total + 1):
            for pred in range(cur):
                assert layer_diff(cur, pred, num_nodes) == seed_layer_diff(cur, pred, num_nodes)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: get_pred(0, 1), "l"),
        (lambda: get_pred(5, 0), "fold"),
        (lambda: get_pred(5, 3, 2), "start_id"),
        (lambda: get_pred(5, 2, 4, 4), "end_id"),
        (lambda: layer_diff(3, 3, (2, 2)), "cur"),
        (lambda: layer_diff(5, 0, (2, 2)), "node"),
    ],
)
def test_wiring_functions_reject_bad_arguments_with_value_error(call, field):
    with pytest.raises(ValueError, match=f"^{field}: got"):
        call()


# --- the plan, for many configs ---------------------------------------------------------------------
def _configs():
    """Small configs covering every fold 1..5, every start and a spread of end ids."""
    for num_nodes in [(2, 2, 2, 2), (3, 4, 6, 3), (1, 3, 2), (6,), (3, 8, 36, 3)]:
        total = sum(num_nodes)
        for fold in range(1, 6):
            for start in range(fold, total + 1):
                ends = [None] if fold == 1 else sorted({start + 1, (start + total) // 2 + 1, total} - {start})
                for end in ends:
                    if end is not None and not start < end <= total:
                        continue
                    for first_downsample in (False, True):
                        yield ResNetXConfig(num_nodes=num_nodes, fold=fold, start_id=start, end_id=end,
                                            unit="basic", base=8, bottle_scale=1.0, stem_width=4,
                                            first_downsample=first_downsample)


def test_plan_matches_seed_functions_for_every_node():
    count = 0
    for cfg in _configs():
        plan = cfg.plan()
        start, end, fold = cfg.effective_start_id, cfg.effective_end_id, cfg.fold
        assert plan.buffer_size == 2 * fold - 1
        strides = [2 if (s > 0 or cfg.first_downsample) else 1 for s in range(len(cfg.num_nodes))]
        widths = {-1: cfg.stem_width, **{s: 8 * 2**s for s in range(len(cfg.num_nodes))}}
        assert [n.index for n in plan.nodes] == list(range(1, cfg.total_nodes + 1))
        for node in plan.nodes:
            l = node.index  # noqa: E741
            pred = seed_get_pred(l, fold, start, end if fold > 1 else max(end, start + 1))
            assert node.pred == pred == get_pred(l, fold, start, end)
            # the shortcut never reaches further back than the ring buffer holds
            assert node.pred >= max(0, l - max(1, 2 * (fold - 1)))
            assert node.stage - stage_of(node.pred, cfg.num_nodes) == seed_layer_diff(l, pred, cfg.num_nodes)
            # stride: product of the strides of the stages the skip enters, computed independently
            crossed = range(stage_of(pred, cfg.num_nodes) + 1, node.stage + 1)
            assert node.shortcut_stride == math.prod(strides[s] for s in crossed)
            assert node.shortcut_in_channels == widths[stage_of(pred, cfg.num_nodes)]
            assert node.projects == (node.shortcut_stride != 1 or widths[stage_of(pred, cfg.num_nodes)]
                                     != widths[node.stage])
            count += 1
    assert count > 5_000


def test_ring_buffer_of_2fold_minus_1_slots_never_overwrites_a_needed_activation():
    """Simulate the buffer with node ids: the slot read for x_{l-1} and x_pred still holds them."""
    for cfg in _configs():
        slots = cfg.plan().buffer_size
        ring = [0] * slots  # node id held by each slot
        for node in cfg.plan().nodes:
            assert ring[(node.index - 1) % slots] == node.index - 1
            assert ring[node.pred % slots] == node.pred
            ring[node.index % slots] = node.index


def test_the_reach_of_2_fold_minus_1_is_attained():
    """Some node skips exactly 2*(fold-1) back, so the buffer cannot shrink below x_{l-2(fold-1)}..x_l."""
    for fold in range(2, 6):
        cfg = ResNetXConfig(num_nodes=(12,), fold=fold, start_id=fold, unit="basic", base=8, stem_width=8)
        assert max(n.skip for n in cfg.plan().nodes) == 2 * (fold - 1)
        assert {n.skip for n in cfg.plan().nodes} == {1, *range(2, 2 * fold - 1, 2)}


def _reference_forward(model, x):
    """The same network evaluated with every activation kept in a dict (no ring buffer)."""
    acts = {0: model.stem(x)}
    for node, unit, shortcut in zip(model.plan.nodes, model.units, model.shortcuts):
        acts[node.index] = model.post(unit(acts[node.index - 1]) + shortcut(acts[node.pred]))
    return model.head(acts[len(model.units)])


@pytest.mark.parametrize(
    ("fold", "start", "end", "unit"),
    [(1, 1, None, "basic"), (2, 2, None, "basic"), (2, 4, 7, "preact_basic"), (3, 3, None, "basic"),
     (3, 5, 9, "bottleneck"), (4, 4, None, "basic"), (4, 6, 10, "mbconv"), (5, 5, None, "preact_basic")],
)
def test_ring_buffer_forward_equals_keep_everything_forward(fold, start, end, unit):
    torch.manual_seed(fold)
    model = build_model(dict(num_nodes=(3, 4, 4), fold=fold, start_id=start, end_id=end, unit=unit,
                             stem="cifar", base=4, stem_width=4, bottle_scale=1.0, num_classes=5)).eval()
    assert len({n.pred for n in model.plan.nodes if n.skip > 1}) > 0 or fold == 1
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), _reference_forward(model, x))
    # and the backward of the ring-buffer forward (which adds shortcuts in place) is the same
    model.train()
    grads = []
    for forward in (model, lambda x: _reference_forward(model, x)):
        model.zero_grad()
        forward(x).square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference)


def test_zoo_fold_names_fold_from_node_k_to_the_last():
    for base, fold in itertools.product(["resnet18", "resnet50"], [2, 3, 4]):
        cfg = builtin_config(f"{base}-fold{fold}")
        assert (cfg.fold, cfg.effective_start_id, cfg.effective_end_id) == (fold, fold, cfg.total_nodes)
