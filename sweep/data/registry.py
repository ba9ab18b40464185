"""Readers by dataset name: how each name in ``sweep.config.datasets.DATASETS`` becomes arrays.

The metadata (classes, channels, sizes) is the config layer's; this registry only maps the same
names to the functions that read the files. A test keeps the two key sets equal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sweep.data.sources.base import RawSplits
from sweep.data.sources.cifar import read_cifar
from sweep.data.sources.digits import read_digits
from sweep.data.sources.idx import read_idx_dataset
from sweep.data.sources.imagefolder import read_imagefolder
from sweep.data.sources.torchvision_sets import read_svhn

Reader = Callable[[Path, bool, int], RawSplits]  # (root, download, image_size) -> raw splits

READERS: dict[str, Reader] = {
    "digits": lambda root, download, size: read_digits(),
    "cifar10": lambda root, download, size: read_cifar("cifar10", root, download),
    "cifar100": lambda root, download, size: read_cifar("cifar100", root, download),
    "mnist": lambda root, download, size: read_idx_dataset("mnist", root, download),
    "fashion_mnist": lambda root, download, size: read_idx_dataset("fashion_mnist", root, download),
    "svhn": lambda root, download, size: read_svhn(root, download),
    "imagefolder": lambda root, download, size: read_imagefolder(root, size),
}
