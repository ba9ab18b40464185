"""The ``ResNetX`` module, built from a :class:`ResNetXConfig` through its wiring plan."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
import yaml
from torch import Tensor, nn

from resnetx.config import ResNetXConfig
from resnetx.errors import ConfigError
from resnetx.heads import ClassifierHead
from resnetx.registry import SHORTCUTS, STEMS, UNITS
from resnetx.units import Unit


class ResNetX(nn.Module):
    """A folded ResNet: node ``l`` adds ``unit_l(x_{l-1})`` to a shortcut from ``x_{pred(l)}``.

    Only the last ``2*fold-1`` activations are kept alive during ``forward`` (a ring buffer, as
    in the seed), so memory does not grow with depth. The wiring is a tuple of Python ints
    fixed at construction, so ``torch.compile`` traces straight-line code.
    """

    def __init__(self, config: ResNetXConfig) -> None:
        super().__init__()
        self.config = config
        self.plan = config.plan()
        unit_cls = UNITS[config.unit]
        shortcut_cls = SHORTCUTS[config.shortcut]
        self.stem = STEMS[config.stem](config.in_channels, config.stem_width)
        self.units = nn.ModuleList(
            unit_cls(n.in_channels, n.out_channels, n.hidden_channels, n.stride, config.kernel_size)
            for n in self.plan.nodes
        )
        self.shortcuts = nn.ModuleList(
            shortcut_cls(n.shortcut_in_channels, n.out_channels, n.shortcut_stride) if n.projects
            else nn.Identity()
            for n in self.plan.nodes
        )
        self.post = nn.ReLU(inplace=True) if unit_cls.post_activation else nn.Identity()
        self.head = ClassifierHead(self.plan.out_widths[-1], config.num_classes,
                                   final_norm=not unit_cls.post_activation, drop_rate=config.drop_rate)
        self._preds = self.plan.preds
        self._slots = self.plan.buffer_size
        self.reset_parameters()

    @property
    def num_features(self) -> int:
        return self.plan.out_widths[-1]

    def reset_parameters(self) -> None:
        """torchvision's initialisation (Kaiming fan-out convs, unit BN), plus optional zero-init."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_last:
            for unit in self.units:
                nn.init.zeros_(cast(Unit, unit).last_norm().weight)

    def forward_features(self, x: Tensor) -> Tensor:
        slots = self._slots
        live: list[Tensor] = [x] * slots
        live[0] = self.stem(x)
        for index, (unit, shortcut, pred) in enumerate(zip(self.units, self.shortcuts, self._preds), 1):
            out = unit(live[(index - 1) % slots])
            # In place, as torchvision does: saves an allocation per node (~1% of a CPU training
            # step). Safe because every unit ends in a conv or BN, whose backward does not read
            # its own output; a unit ending in e.g. ReLU would make autograd raise, not mislead.
            out += shortcut(live[pred % slots])
            live[index % slots] = self.post(out)
        return live[len(self._preds) % slots]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


# Suffixes that make a ``build_model`` spec a file rather than a built-in name (no built-in has one).
MODEL_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def build_model(spec: ResNetXConfig | Mapping[str, Any] | str | os.PathLike[str], device: Any = None,
                weights: str | os.PathLike[str] | None = None, **overrides: Any) -> ResNetX:
    """Build a ResNetX from a config, a mapping of its fields, a built-in name or a YAML file.

    ``overrides`` replace config fields (``build_model("resnet50", num_classes=10)``).
    ``device="meta"`` builds without allocating memory (for counting parameters).

    A YAML file is an exported config (``resnetx export``: its ``model:`` section) or a file of
    model fields. ``weights`` is a plain state dict file (what ``resnetx export --with-weights``
    writes next to the YAML), loaded with ``weights_only=True`` so a poisoned file cannot run
    code; when the YAML's ``provenance.weights.sha256`` is given, the file must match it, so a
    network is never silently rebuilt from other weights than the ones that were exported. The
    model comes back in training mode, like any ``nn.Module``: call ``.eval()`` for inference.
    Every problem (missing file, checksum mismatch, weights of another shape) is one
    :class:`ConfigError` line.
    """
    from resnetx.zoo import resolve_config

    checksum = None
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.lower().endswith(MODEL_FILE_SUFFIXES)):
        spec, checksum = _read_model_file(Path(spec))
    config = resolve_config(spec)
    if overrides:
        config = config.replace(**overrides)
    if weights is not None and device is not None and torch.device(device).type == "meta":
        raise ConfigError("device", "meta", "holds no values; build on a real device to load weights")
    if device is None:
        model = ResNetX(config)
    else:
        with torch.device(device):
            model = ResNetX(config)
    if weights is not None:
        _load_weights(model, Path(weights), checksum)
    return model


def _read_model_file(path: Path) -> tuple[ResNetXConfig, str | None]:
    """The model of an exported config (or a model-only YAML) and the weights checksum it records.

    The model section is taken as written: ``resnetx`` knows no datasets, so a file that leaves
    ``in_channels``/``num_classes`` to its ``data:`` section is refused rather than built with
    the ImageNet defaults (exported files always carry both).
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("spec", str(path), "file not found") from None
    except yaml.YAMLError:
        raise ConfigError("spec", str(path), "is not valid YAML") from None
    if not isinstance(document, dict):
        raise ConfigError("spec", str(path), "must hold a mapping (a model: section or model fields)")
    fields = document["model"] if isinstance(document.get("model"), dict) else document
    if "data" in document:
        for name, aliases in (("in_channels", ("in_channels", "c_in")), ("num_classes", ("num_classes", "c_out"))):
            if not any(a in fields for a in aliases):
                raise ConfigError(f"model.{name}", None, "must be set in the file: build_model reads no data "
                                  "section (use sweep.config.experiment.load_experiment(FILE).model)")
    fields = {k: v for k, v in fields.items() if k not in ("data", "train", "provenance")}
    try:
        config = ResNetXConfig(**fields)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None
    provenance = document.get("provenance")
    recorded = provenance.get("weights") if isinstance(provenance, dict) else None
    checksum = recorded.get("sha256") if isinstance(recorded, dict) else None
    return config, str(checksum) if checksum else None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in chunks (weights files can be hundreds of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_weights(model: ResNetX, path: Path, checksum: str | None) -> None:
    """Load a plain state dict into ``model`` (strict: every tensor present, every shape equal)."""
    if not path.is_file():
        raise ConfigError("weights", str(path), "file not found")
    if checksum is not None:
        actual = file_sha256(path)
        if actual != checksum:
            raise ConfigError("weights", str(path), f"SHA-256 {actual[:16]}... does not match the config's "
                              f"provenance.weights.sha256 {checksum[:16]}...: not the exported file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure, incl. a refused (non-tensor) payload
        raise ConfigError("weights", str(path), f"is not a plain state dict (weights_only=True: "
                          f"{type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError("weights", str(path), "is not a state dict (name -> tensor)")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise ConfigError("weights", str(path), f"do not fit this config: {len(missing)} missing, "
                          f"{len(unexpected)} unexpected, {len(wrong)} of another shape (first: {first})")
    model.load_state_dict(state)
