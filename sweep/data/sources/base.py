"""What a dataset reader returns, before splitting, resizing and normalising."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawSplits:
    """Images as uint8 ``(N, C, H, W)`` arrays (pixel range 0..255), labels as int64.

    ``val_x``/``val_y`` are set only when the source has its own validation split (an image
    folder with ``val/``); otherwise ``sweep.data.load`` carves one out of the training set.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None


def empty_images(channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A zero-length split (a source without a test set)."""
    return np.zeros((0, channels, size, size), np.uint8), np.zeros((0,), np.int64)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): ``fraction`` of every class held out, chosen by ``seed``.

    Stratified so that small training sets (digits, ``subset``) keep every class in both
    parts; sorted so the result does not depend on the order classes are visited.
    """
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        # At least one of each class on both sides when the class has two or more members.
        n_held = min(max(round(fraction * len(members)), 1), len(members) - 1) if len(members) > 1 else 0
        held.append(members[:n_held])
        kept.append(members[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))
