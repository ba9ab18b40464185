"""Datasets by name, loaded once into numpy arrays (a :class:`DatasetBundle`).

Why numpy: a bundle put into Ray's object store is shared zero-copy by every trial on a
node, and the training loop moves it to the device in one copy (or, when it does not fit,
streams batches from it: ``sweep.data.stream``). Images are uint8 NCHW
(a quarter of float32's memory); normalisation and augmentation happen on the device.

Names resolve through two registries: the metadata in ``sweep.config.datasets`` (what configs
validate against) and the readers in ``sweep.data.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.config.datasets import DATASETS
from sweep.config.experiment import DataConfig
from sweep.config.paths import runs_dir
from sweep.data.registry import READERS
from sweep.data.sources.base import stratified_split


@dataclass
class DatasetBundle:
    """One dataset in memory: uint8 ``(N, C, H, W)`` images, int64 labels, and what training needs to know."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]  # per channel, on the 0..1 scale, from the training split
    std: tuple[float, ...]
    hflip: bool
    class_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    def summary(self) -> str:
        return (f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} val / {len(self.test_y)} test, "
                f"{self.num_classes} classes, {'x'.join(map(str, self.input_shape))}")


def data_root(cfg: DataConfig, root: str | Path | None = None) -> Path:
    """``data.root`` if set, else the caller's ``root``, else ``<runs_dir>/data``."""
    if cfg.root:
        return Path(cfg.root).expanduser().resolve()
    if root is not None:
        return Path(root).expanduser().resolve()
    return runs_dir() / "data"


def load_dataset(cfg: DataConfig, root: str | Path | None = None) -> DatasetBundle:
    """Read, split (deterministically by ``split_seed``), subset and resize one dataset."""
    spec = DATASETS[cfg.name]
    size = cfg.effective_image_size
    raw = READERS[cfg.name](data_root(cfg, root), cfg.download, size)
    if raw.val_x is None or raw.val_y is None or len(raw.val_y) == 0:
        kept, held = stratified_split(raw.train_y, cfg.val_fraction, cfg.split_seed)
        train_x, train_y, val_x, val_y = raw.train_x[kept], raw.train_y[kept], raw.train_x[held], raw.train_y[held]
    else:
        train_x, train_y, val_x, val_y = raw.train_x, raw.train_y, raw.val_x, raw.val_y
    if cfg.subset is not None and cfg.subset < len(train_y):
        chosen = np.sort(np.random.default_rng(cfg.split_seed + 1).permutation(len(train_y))[:cfg.subset])
        train_x, train_y = train_x[chosen], train_y[chosen]
    train_x, val_x, test_x = (resize(x, size) for x in (train_x, val_x, raw.test_x))
    num_classes = spec.num_classes or len(raw.class_names)
    mean, std = channel_stats(train_x)
    return DatasetBundle(cfg.name, train_x, train_y, val_x, val_y, test_x, np.asarray(raw.test_y, np.int64),
                         num_classes, int(train_x.shape[1]), size, mean, std, spec.hflip, raw.class_names)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0..1 scale (float64 sums: exact enough for any N)."""
    flat = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1).astype(np.float64) / 255.0
    std = np.maximum(flat.std(axis=1), 1e-3)
    return tuple(float(v) for v in flat.mean(axis=1)), tuple(float(v) for v in std)


def resize(images: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Square-resize uint8 NCHW images once at load time (bilinear, antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return np.ascontiguousarray(images)
    if len(images) == 0:
        return np.zeros((0, images.shape[1], size, size), np.uint8)
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), images.shape[1], size, size), np.uint8)
    shrink = size < max(images.shape[-2:])
    for start in range(0, len(images), chunk):
        batch = torch.from_numpy(images[start:start + chunk]).float()
        scaled = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        out[start:start + chunk] = scaled.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out
