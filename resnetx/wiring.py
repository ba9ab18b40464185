"""The wiring of a folded ResNet, computed from numbers alone (no torch).

Nodes are numbered 0..N: node 0 is the stem output and nodes 1..N are the units, stage by
stage. Node ``l`` computes ``post(unit_l(x_{l-1}) + shortcut_l(x_{pred(l)}))``. The plan is
static, so the module built from it has no data-dependent control flow (``torch.compile``
sees straight-line code) and ``resnetx show`` can print it without building anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def get_pred(l: int, fold: int = 1, start_id: int | None = None, end_id: int | None = None) -> int:  # noqa: E741
    """Return the predecessor node whose output feeds node ``l``'s shortcut (the seed's rule).

    Outside ``[start_id, end_id]`` or when ``fold == 1`` this is ``l - 1`` (a plain ResNet);
    inside, the skip reaches back ``2 * (1 + (l - 1 - (start_id - fold)) % (fold - 1))`` nodes.
    """
    start_id = fold if start_id is None else start_id
    end_id = l if end_id is None else end_id
    if l < 1:
        raise ValueError(f"l: got {l}; must be >= 1")
    if fold < 1:
        raise ValueError(f"fold: got {fold}; must be >= 1")
    if start_id < fold:
        raise ValueError(f"start_id: got {start_id}; must be >= fold ({fold})")
    if fold > 1 and end_id <= start_id:
        raise ValueError(f"end_id: got {end_id}; must be > start_id ({start_id})")
    if l < start_id or l > end_id or fold == 1:
        return l - 1
    remainder = (l - 1 - (start_id - fold)) % (fold - 1)
    return l - 2 * (1 + remainder)


def stage_of(node: int, num_nodes: Sequence[int]) -> int:
    """Stage index of a node: -1 for the stem output (node 0), else 0..len(num_nodes)-1."""
    if node == 0:
        return -1
    total = 0
    for stage, count in enumerate(num_nodes):
        total += count
        if node <= total:
            return stage
    raise ValueError(f"node: got {node}; must be <= {total} (the last node)")


def layer_diff(cur: int, pred: int, num_nodes: Sequence[int]) -> int:
    """How many stage boundaries lie between ``pred`` and ``cur`` (the stem counts as a stage)."""
    if cur <= pred:
        raise ValueError(f"cur: got {cur}; must be > pred ({pred})")
    return stage_of(cur, num_nodes) - stage_of(pred, num_nodes)


@dataclass(frozen=True)
class NodePlan:
    """Everything needed to build node ``index``: its unit and its shortcut."""

    index: int
    stage: int
    pred: int
    in_channels: int
    hidden_channels: int
    out_channels: int
    stride: int
    shortcut_in_channels: int
    shortcut_stride: int

    @property
    def projects(self) -> bool:
        """True when the shortcut cannot be the identity (channels or resolution differ)."""
        return self.shortcut_stride != 1 or self.shortcut_in_channels != self.out_channels

    @property
    def skip(self) -> int:
        """How far back the shortcut reaches (1 for a plain residual connection)."""
        return self.index - self.pred


@dataclass(frozen=True)
class WiringPlan:
    """The static plan of a ResNetX: stem width, per-stage widths/strides and every node."""

    stem_width: int
    hidden_widths: tuple[int, ...]
    out_widths: tuple[int, ...]
    strides: tuple[int, ...]
    nodes: tuple[NodePlan, ...]
    buffer_size: int

    @property
    def preds(self) -> tuple[int, ...]:
        return tuple(n.pred for n in self.nodes)


def stage_widths(base: int, exp: float, bottle_scale: float, stages: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Hidden width ``base*exp**i`` and output width ``int(hidden*bottle_scale)`` per stage."""
    hidden = tuple(round(base * exp**i) for i in range(stages))
    out = tuple(int(h * bottle_scale) for h in hidden)
    return hidden, out


def make_plan(
    num_nodes: Sequence[int],
    fold: int,
    start_id: int,
    end_id: int,
    stem_width: int,
    hidden_widths: Sequence[int],
    out_widths: Sequence[int],
    first_downsample: bool,
) -> WiringPlan:
    """Compute the wiring plan. Shortcut strides multiply the stage strides they cross."""
    strides = tuple(1 if i == 0 and not first_downsample else 2 for i in range(len(num_nodes)))
    # cumulative stride of each stage's output relative to the stem output (stage -1 -> 1)
    reduction = {-1: 1}
    for s, stride in enumerate(strides):
        reduction[s] = reduction[s - 1] * stride
    width = {-1: stem_width, **dict(enumerate(out_widths))}
    nodes = []
    index = 0
    for stage, count in enumerate(num_nodes):
        for j in range(count):
            index += 1
            pred = get_pred(index, fold, start_id, end_id)
            pred_stage = stage_of(pred, num_nodes)
            nodes.append(
                NodePlan(
                    index=index,
                    stage=stage,
                    pred=pred,
                    in_channels=width[stage - 1] if j == 0 else width[stage],
                    hidden_channels=hidden_widths[stage],
                    out_channels=width[stage],
                    stride=strides[stage] if j == 0 else 1,
                    shortcut_in_channels=width[pred_stage],
                    shortcut_stride=reduction[stage] // reduction[pred_stage],
                )
            )
    return WiringPlan(
        stem_width=stem_width,
        hidden_widths=tuple(hidden_widths),
        out_widths=tuple(out_widths),
        strides=strides,
        nodes=tuple(nodes),
        buffer_size=2 * fold - 1,
    )


def total_reduction(strides: Sequence[int]) -> int:
    return math.prod(strides)
