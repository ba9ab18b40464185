"""Datasets by name, loaded once into numpy arrays (a :class:`DatasetBundle`).

Why numpy: a bundle put into Ray's object store is shared zero-copy by every trial on a
node, and the training loop moves it to the device in one copy. Images are uint8 NCHW
(a quarter of float32's memory); normalisation and augmentation happen on the device.

The :data:`DATASETS` registry holds each dataset's metadata (classes, channels, default image
size, whether a horizontal flip keeps the label), usable without loading anything, so configs
can be validated and filled in before any data exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnetx.errors import ConfigError
from sweep.datasets.base import RawSplits, stratified_split
from sweep.datasets.cifar import read_cifar
from sweep.datasets.digits import read_digits
from sweep.datasets.imagefolder import class_names, read_imagefolder
from sweep.datasets.torchvision_sets import read_fashion_mnist, read_mnist, read_svhn

if TYPE_CHECKING:
    from sweep.experiment import DataConfig

Reader = Callable[[Path, bool, int], RawSplits]  # (root, download, image_size) -> raw splits


@dataclass(frozen=True)
class DatasetSpec:
    """Metadata of one dataset (no data): enough to validate and fill an experiment config."""

    name: str
    num_classes: int | None  # None: known only from the data (imagefolder)
    in_channels: int
    image_size: int  # default side length fed to the network
    hflip: bool  # does a horizontal flip keep the label? (not for digits or house numbers)
    downloadable: bool
    description: str
    reader: Reader = field(repr=False, compare=False)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec("digits", 10, 1, 16, False, False,
                    "scikit-learn's bundled 8x8 digits, upsampled (offline, 1797 images)",
                    lambda root, download, size: read_digits()),
        DatasetSpec("cifar10", 10, 3, 32, True, True, "CIFAR-10 (python batches under the root)",
                    lambda root, download, size: read_cifar("cifar10", root, download)),
        DatasetSpec("cifar100", 100, 3, 32, True, True, "CIFAR-100 (python batches under the root)",
                    lambda root, download, size: read_cifar("cifar100", root, download)),
        DatasetSpec("mnist", 10, 1, 28, False, True, "MNIST (torchvision layout under the root)",
                    lambda root, download, size: read_mnist(root, download)),
        DatasetSpec("fashion_mnist", 10, 1, 28, True, True, "Fashion-MNIST (torchvision layout under the root)",
                    lambda root, download, size: read_fashion_mnist(root, download)),
        DatasetSpec("svhn", 10, 3, 32, False, True, "SVHN cropped digits (root/svhn/*.mat)",
                    lambda root, download, size: read_svhn(root, download)),
        DatasetSpec("imagefolder", None, 3, 64, True, False,
                    "your images: root/train/<class>/*, optional root/val/, root/test/",
                    lambda root, download, size: read_imagefolder(root, size)),
    )
}


def dataset_meta(name: str, root: str | None = None) -> DatasetSpec:
    """The registry entry; for ``imagefolder`` with an existing root, its classes are counted."""
    if name not in DATASETS:
        raise ConfigError("data.name", name, f"must be one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if spec.num_classes is None and root and (Path(root).expanduser() / "train").is_dir():
        return replace(spec, num_classes=len(class_names(Path(root).expanduser())))
    return spec


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
    from sweep.tracking import runs_dir

    return runs_dir() / "data"


def load_dataset(cfg: DataConfig, root: str | Path | None = None) -> DatasetBundle:
    """Read, split (deterministically by ``split_seed``), subset and resize one dataset."""
    spec = DATASETS[cfg.name]
    size = cfg.effective_image_size
    raw = spec.reader(data_root(cfg, root), cfg.download, size)
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
