"""``register_trainable`` adds a trainable a sweep can name; an unknown name fails at plan time.

``SweepSettings.trainable`` was a ``Literal`` of three names (one of them the tests' stand-in), so a
registered extension was refused by the CLI and the API alike (review of 7bd5730, item 9).
"""

from __future__ import annotations

import pytest

from resnetx.errors import ConfigError, known
from sweep.config.settings import SweepSettings
from sweep.tune.runner import plan_sweep
from sweep.tune.trainables import TRAINABLES, register_trainable


def _trains_nothing(config: dict) -> None:
    """A trainable that an extension would register (never run here: planning only)."""


def test_a_registered_trainable_can_be_planned(tmp_path):
    register_trainable("extension-under-test", _trains_nothing)
    try:
        plan = plan_sweep(SweepSettings(trainable="extension-under-test", runs_dir=str(tmp_path)))
        assert plan.settings.trainable == "extension-under-test"
    finally:
        TRAINABLES.pop("extension-under-test")


def test_an_unknown_trainable_is_one_line_naming_the_registry(tmp_path):
    settings = SweepSettings(trainable="nope", runs_dir=str(tmp_path))  # the settings cannot know the registry
    with pytest.raises(ConfigError) as caught:
        plan_sweep(settings)
    assert str(caught.value) == f"--trainable: got 'nope'; must be one of {', '.join(TRAINABLES)}"


def test_known_names_the_field_the_value_and_what_is_allowed():
    assert known("unit", "basic", ("basic", "mbconv")) == "basic"
    with pytest.raises(ConfigError, match=r"^unit: got 'wide'; must be one of basic, mbconv$"):
        known("unit", "wide", ("basic", "mbconv"))
