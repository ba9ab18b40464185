"""Explicit registries of the building blocks, by the names a config uses."""

from __future__ import annotations

from resnetx.config import SHORTCUT_NAMES, STEM_NAMES, UNIT_NAMES
from resnetx.shortcuts import AvgPoolShortcut, MaxPoolShortcut, ProjectionShortcut, ZeroPadShortcut
from resnetx.stems import CifarStem, DeepStem, ImageNetStem
from resnetx.units import (
    BasicUnit,
    BottleneckUnit,
    MBConvUnit,
    PreActBasicUnit,
    PreActBottleneckUnit,
    Unit,
    XceptionUnit,
)

UNITS: dict[str, type[Unit]] = {
    "basic": BasicUnit,
    "bottleneck": BottleneckUnit,
    "preact_basic": PreActBasicUnit,
    "preact_bottleneck": PreActBottleneckUnit,
    "mbconv": MBConvUnit,
    "xception": XceptionUnit,
}
STEMS = {"imagenet": ImageNetStem, "deep": DeepStem, "cifar": CifarStem}
SHORTCUTS = {"projection": ProjectionShortcut, "avgpool": AvgPoolShortcut, "maxpool": MaxPoolShortcut,
             "zeropad": ZeroPadShortcut}

if (tuple(UNITS), tuple(STEMS), tuple(SHORTCUTS)) != (UNIT_NAMES, STEM_NAMES, SHORTCUT_NAMES):
    raise RuntimeError("resnetx.registry and resnetx.config disagree on the block names")
