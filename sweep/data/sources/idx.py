"""MNIST and Fashion-MNIST read straight from their IDX files, gzipped or not, offline.

Why not torchvision's reader: it accepts only its own layout (``root/FashionMNIST/raw/`` with
the files un-gzipped), while Debian's ``dataset-fashion-mnist`` installs the four original
``*-idx?-ubyte.gz`` files flat under ``/usr/share/datasets/fashion-mnist/``. The format is
tiny: a big-endian header (magic ``0x0803`` for images with count, rows, cols; ``0x0801`` for
labels with count) followed by uint8 values. Where the files are looked for, in order:

1. ``data.root`` (or the runs folder's ``data/``): the four files flat in it, in
   ``<root>/<name>/``, or in torchvision's ``<root>/<TorchvisionName>/raw/``;
2. Debian's location (``/usr/share/datasets/fashion-mnist/``), found without any setting.

``data.download: true`` fetches a missing data set with torchvision into ``<root>`` first.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnetx.errors import ConfigError
from sweep.data.sources.base import RawSplits

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
SPLIT_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class IdxDataset:
    """Where one IDX data set lives and what it is called."""

    name: str  # our dataset name
    torchvision_name: str  # torchvision's class (and folder) name
    debian_dir: Path  # where the Debian package installs it
    debian_package: str | None
    classes: tuple[str, ...]


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
IDX_DATASETS = {
    "fashion_mnist": IdxDataset("fashion_mnist", "FashionMNIST", Path("/usr/share/datasets/fashion-mnist"),
                                "dataset-fashion-mnist", FASHION_CLASSES),
    "mnist": IdxDataset("mnist", "MNIST", Path("/usr/share/datasets/mnist"), None,
                        tuple(str(i) for i in range(10))),
}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (``.gz`` or plain) as a uint8 array: ``(N, rows, cols)`` images or ``(N,)`` labels."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        blob = handle.read()
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * dims
    if len(blob) < header:
        raise ConfigError("data.root", str(path), "is not an IDX file (shorter than its header)")
    found, *shape = struct.unpack(f">I{dims}I", blob[:header])
    if found != magic:
        raise ConfigError("data.root", str(path), f"has IDX magic {found:#010x}; expected {magic:#010x}")
    values = np.frombuffer(blob, dtype=np.uint8, offset=header)
    if values.size != int(np.prod(shape)):
        raise ConfigError("data.root", str(path), f"holds {values.size} values; its header says {shape}")
    return values.reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def candidate_folders(dataset: IdxDataset, root: Path) -> list[Path]:
    """Folders that may hold the four files, in the order they are tried."""
    return [root, root / dataset.name, root / dataset.torchvision_name / "raw", dataset.debian_dir]


def locate(dataset: IdxDataset, root: Path) -> Path | None:
    """The first folder holding all four files of ``dataset``, or None."""
    for folder in candidate_folders(dataset, root):
        if all(_find(folder, stem) for pair in SPLIT_FILES.values() for stem in pair):
            return folder
    return None


def _download(dataset: IdxDataset, root: Path) -> None:
    import torchvision.datasets as tvd

    factory = getattr(tvd, dataset.torchvision_name)
    try:
        for train in (True, False):
            factory(str(root), train=train, download=True)
    except Exception as exc:  # offline, proxy, disk full: one line for the user
        raise ConfigError("data.download", True, f"could not get {dataset.name} into {root} "
                          f"({type(exc).__name__}: {exc})") from None


def missing_message(dataset: IdxDataset, root: Path) -> str:
    where = ", ".join(str(p) for p in candidate_folders(dataset, root))
    install = f"apt-get install {dataset.debian_package}, or " if dataset.debian_package else ""
    return (f"has no {dataset.name} (looked in {where}); {install}set data.root to a folder holding the four "
            "*-idx?-ubyte(.gz) files, or data.download=true to fetch it")


def read_idx_dataset(name: str, root: Path, download: bool) -> RawSplits:
    """Train and test splits of an IDX data set as uint8 ``(N, 1, H, W)`` images and int64 labels."""
    dataset = IDX_DATASETS[name]
    folder = locate(dataset, root)
    if folder is None and download:
        _download(dataset, root)
        folder = locate(dataset, root)
    if folder is None:
        raise ConfigError("data.root", str(root), missing_message(dataset, root))
    splits = {}
    for split, (images_stem, labels_stem) in SPLIT_FILES.items():
        images = read_idx(_find(folder, images_stem), IMAGES_MAGIC)  # type: ignore[arg-type]
        labels = read_idx(_find(folder, labels_stem), LABELS_MAGIC)  # type: ignore[arg-type]
        if len(images) != len(labels):
            raise ConfigError("data.root", str(folder), f"{split}: {len(images)} images but {len(labels)} labels")
        if labels.size and int(labels.max()) >= len(dataset.classes):
            raise ConfigError("data.root", str(folder), f"{split}: label {int(labels.max())} outside 0..9")
        splits[split] = (images[:, None].copy(), labels.astype(np.int64))
    return RawSplits(*splits["train"], *splits["test"], dataset.classes)
