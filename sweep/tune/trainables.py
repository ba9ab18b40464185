"""The explicit registry of ``resnetx sweep --trainable`` names, and how the runner feeds each.

Its own module, above both trainables, so the real trainable and the replay one never import
each other (they share ``failure_report`` one way: replay -> trainable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resnetx.errors import known
from sweep.tune.replay import replay_options, replay_trial
from sweep.tune.trainable import run_trial


@dataclass(frozen=True)
class TrainableEntry:
    """One ``--trainable`` choice: the Tune function and how the runner feeds it.

    ``needs_data``: the runner loads the dataset once on the driver and passes it as ``data=``.
    ``options``: called with the sweep's plan on the driver, before Ray starts (its errors are the
    sweep's one-line errors); its value is passed to every trial as ``options=``.
    """

    function: Callable[..., None]
    needs_data: bool = False
    options: Callable[[Any], Any] | None = None


# Explicit registry of ``resnetx sweep --trainable`` names: the real trainable and the replay of a
# recorded benchmark (sweep/tune/replay.py); the test suite registers its deterministic stand-in
# (tests/support/standin.py).
TRAINABLES: dict[str, TrainableEntry] = {
    "resnetx": TrainableEntry(run_trial, needs_data=True),
    "replay": TrainableEntry(replay_trial, options=replay_options),
}


def register_trainable(name: str, function: Callable[..., None], *, needs_data: bool = False,
                       options: Callable[[Any], Any] | None = None) -> None:
    """Add a trainable under ``name`` (tests, and extensions that train something else)."""
    TRAINABLES[name] = TrainableEntry(function, needs_data, options)


def trainable_entry(name: str) -> TrainableEntry:
    return TRAINABLES[known("--trainable", name, TRAINABLES)]
