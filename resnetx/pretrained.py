"""Loading torchvision ResNet checkpoints into (folded) ResNetX models.

Every torchvision tensor has one natural home in a ResNetX built with the same depths: the
stem (``conv1``/``bn1``), unit ``j`` of stage ``s`` (``layer{s+1}.{j}``), the stage's first
shortcut projection (``layer{s+1}.0.downsample``) and the classifier (``fc``). A tensor is
copied when its home exists with the same shape, and a norm only together with the conv that
feeds it (a folded net's projection from another stage keeps the BN width of torchvision's but
not its input: its running statistics would describe a different conv's output). What stays
fresh (new shortcut projections of a folded net, a resized classifier) is reported exactly,
never silently. A ResNetX state dict (say, a fold-1 network trained here) loads through the
same rule: the same tensors, under our own names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from resnetx.errors import ConfigError, known
from resnetx.model import ResNetX

Freeze = Literal["none", "backbone", "all"]
FREEZE_MODES = ("none", "backbone", "all")
# Units whose tensors mean what torchvision's mean. A pre-activation unit also has ``bn1`` and
# ``conv1`` of the same shapes inside a stage, but its ``bn1`` normalises the unit's input, not
# ``conv1``'s output: copying would load silently and be wrong.
TORCHVISION_UNITS = ("basic", "bottleneck")

_NORM = re.compile(r"^(?P<module>.*\.)bn(?P<k>\d*)\.[^.]+$")  # units.3.bn2.weight, shortcuts.4.bn.bias
_DOWNSAMPLE = {"downsample.0.": "conv.", "downsample.1.": "bn."}


@dataclass
class LoadReport:
    """What a checkpoint load did: loaded tensors, our fresh tensors, and source tensors unused."""

    loaded: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"loaded {len(self.loaded)} tensors, {len(self.fresh)} fresh, {len(self.unused)} unused"


def torchvision_key_map(model: ResNetX) -> dict[str, str]:
    """Map torchvision ResNet state-dict keys to this model's keys (names only; shapes checked later)."""
    first_node = [1]
    for count in model.config.num_nodes[:-1]:
        first_node.append(first_node[-1] + count)
    mapping: dict[str, str] = {}
    for ours in model.state_dict():
        theirs = _torchvision_name(ours, first_node)
        if theirs is not None:
            mapping[theirs] = ours
    return mapping


def is_resnetx_layout(state: Mapping[str, Tensor]) -> bool:
    """A ResNetX state dict (``stem.*``, ``units.N.*``) rather than torchvision's (``conv1.*``, ``layerK.*``)."""
    return any(key.startswith(("stem.", "units.")) for key in state)


def resnetx_key_map(model: ResNetX) -> dict[str, str]:
    """For a ResNetX source: each of our tensors that has a torchvision home, under its own name.

    The same tensors as from a torchvision checkpoint (stem, units, the stage-first shortcut
    projections, the classifier), so a fold-1 ResNetX trained here warm-starts a folded one
    exactly as torchvision's ResNet does: unit and stem tensors load, new projections stay fresh.
    """
    return {ours: ours for ours in torchvision_key_map(model).values()}


def _torchvision_name(ours: str, first_node: list[int]) -> str | None:
    """The torchvision key that would hold our tensor ``ours``, or None if it has none."""
    if ours.startswith("stem."):
        return ours.removeprefix("stem.")
    if ours.startswith("head.fc."):
        return ours.removeprefix("head.")
    m = re.match(r"^(units|shortcuts)\.(\d+)\.(.+)$", ours)
    if not m:
        return None
    kind, index, rest = m.group(1), int(m.group(2)) + 1, m.group(3)
    stage = max(s for s, first in enumerate(first_node) if first <= index)
    block = index - first_node[stage]
    prefix = f"layer{stage + 1}.{block}."
    if kind == "units":
        return prefix + rest
    if block != 0:
        return None
    for tv, local in _DOWNSAMPLE.items():
        if rest.startswith(local):
            return prefix + tv + rest.removeprefix(local)
    return None


def _read_source(source: Mapping[str, Tensor] | str | Path) -> Mapping[str, Tensor]:
    if isinstance(source, Mapping):
        return source
    text = str(source)
    path = Path(text)
    if path.suffix in {".pth", ".pt", ".bin"} or path.exists():
        if not path.is_file():
            raise ConfigError("weights", text, "file not found; pass a .pth state dict (torchvision or ResNetX layout)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle payloads are refused by weights_only=True
            raise ConfigError("weights", text, f"not a plain tensor checkpoint ({type(exc).__name__})") from None
        if isinstance(state, Mapping):  # a bare state dict, or a checkpoint holding one
            state = state.get("state_dict", state.get("model", state))
        if not isinstance(state, Mapping):
            raise ConfigError("weights", text, f"holds a {type(state).__name__}; must hold a state dict")
        return state
    return _download_torchvision(text)


def _download_torchvision(name: str) -> Mapping[str, Tensor]:
    """Resolve ``ResNet50_Weights.IMAGENET1K_V2`` or ``resnet50`` (its default) and download."""
    from torchvision import models

    try:
        weights = models.get_weight(name) if "_Weights." in name else models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise ConfigError("weights", name, "must be a state dict, a .pth file or a torchvision weights name "
                          "such as ResNet50_Weights.IMAGENET1K_V2") from None
    try:  # offline, urllib fails at name resolution at once (URLError is an OSError)
        return weights.get_state_dict(progress=False)
    except OSError as exc:
        raise ConfigError("weights", name, f"could not download ({exc.__class__.__name__}); "
                          "offline? pass a local .pth file instead") from None


def load_torchvision_weights(
    model: ResNetX, source: Mapping[str, Tensor] | str | Path, freeze: Freeze = "none"
) -> LoadReport:
    """Copy every shape-compatible torchvision tensor into ``model`` and report the rest.

    ``freeze``: ``none`` trains everything; ``backbone`` freezes every loaded parameter
    except the classifier, so fresh shortcut projections and the head still learn; ``all``
    freezes the whole network but its classifier head, loaded or not (the seed's
    feature-extraction setting: a pretrained network, only the new head trains). Frozen batch
    norms must also stay in eval mode while training (``sweep.training.loop`` keeps them so).
    """
    known("freeze", freeze, FREEZE_MODES)
    if model.config.unit not in TORCHVISION_UNITS:
        raise ConfigError("unit", model.config.unit, "torchvision ResNet weights fit only the units "
                          + ", ".join(TORCHVISION_UNITS))
    state = _read_source(source)
    ours = model.state_dict()
    report = LoadReport()
    key_map = resnetx_key_map(model) if is_resnetx_layout(state) else torchvision_key_map(model)
    fits = {local for theirs, local in key_map.items()
            if isinstance(state.get(theirs), Tensor) and tuple(state[theirs].shape) == tuple(ours[local].shape)}
    fits = {local for local in fits if _feeding_conv(local) in fits or _feeding_conv(local) not in ours}
    with torch.no_grad():
        for theirs, local in key_map.items():
            if local in fits:
                ours[local].copy_(state[theirs])
                report.loaded.append(local)
    loaded = set(report.loaded)
    used = {t for t, local in key_map.items() if local in loaded}
    report.fresh = [k for k in ours if k not in loaded]
    report.unused = [k for k in state if k not in used]
    _apply_freeze(model, freeze, loaded)
    return report


def _feeding_conv(key: str) -> str | None:
    """The conv weight whose output the norm tensor ``key`` normalises (``bn2`` <- ``conv2``)."""
    m = _NORM.match(key)
    return f"{m.group('module')}conv{m.group('k')}.weight" if m else None


def _apply_freeze(model: ResNetX, freeze: Freeze, loaded: set[str]) -> None:
    for name, param in model.named_parameters():
        if freeze == "all":
            param.requires_grad_(name.startswith("head."))
        elif freeze == "backbone":
            param.requires_grad_(not (name in loaded and not name.startswith("head.")))
