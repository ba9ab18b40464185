"""scikit-learn's bundled 8x8 digits: the offline default (ships with scikit-learn, never downloads)."""

from __future__ import annotations

import numpy as np

from sweep.data.sources.base import RawSplits, stratified_split

# digits has no official test split: a fixed stratified 20% is held out, independent of
# data.split_seed, so test accuracy is comparable across every run.
TEST_FRACTION = 0.2
TEST_SEED = 20240


def read_digits() -> RawSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (1797, 8, 8), values 0..16
    x = np.round(images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y, TEST_FRACTION, TEST_SEED)
    return RawSplits(x[train], y[train], x[test], y[test], tuple(str(i) for i in range(10)))
