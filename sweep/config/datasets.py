"""What is known of each dataset before any data is read: the registry configs validate against.

Why here, in the config layer, and not beside the readers: an experiment config fills its
model's ``in_channels``/``num_classes`` and its default image size from this metadata while it
is validated, long before (and often without) any data being loaded. The readers that turn a
name into arrays live one layer up, in ``sweep.data.registry``, keyed by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from resnetx.errors import ConfigError, known


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


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec("digits", 10, 1, 16, False, False,
                    "scikit-learn's bundled 8x8 digits, upsampled (offline, 1797 images)"),
        DatasetSpec("cifar10", 10, 3, 32, True, True, "CIFAR-10 (python batches under the root)"),
        DatasetSpec("cifar100", 100, 3, 32, True, True, "CIFAR-100 (python batches under the root)"),
        DatasetSpec("mnist", 10, 1, 28, False, True,
                    "MNIST (IDX files: Debian's dataset-mnist, a flat folder or torchvision's layout)"),
        DatasetSpec("fashion_mnist", 10, 1, 28, True, True,
                    "Fashion-MNIST (IDX files: Debian's dataset-fashion-mnist, a flat folder or torchvision's layout)"),
        DatasetSpec("svhn", 10, 3, 32, False, True, "SVHN cropped digits (root/svhn/*.mat)"),
        DatasetSpec("imagefolder", None, 3, 64, True, False,
                    "your images: root/train/<class>/*, optional root/val/, root/test/"),
    )
}


def class_names(root: Path) -> tuple[str, ...]:
    """Sorted sub-folder names of ``root/train`` of an image folder (cheap: no image is opened)."""
    train = root / "train"
    if not train.is_dir():
        raise ConfigError("data.root", str(root), "must contain train/<class>/ folders of images")
    names = tuple(sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not names:
        raise ConfigError("data.root", str(root), "train/ has no class folders")
    return names


def dataset_meta(name: str, root: str | None = None) -> DatasetSpec:
    """The registry entry; for ``imagefolder`` with an existing root, its classes are counted."""
    spec = DATASETS[known("data.name", name, DATASETS)]
    if spec.num_classes is None and root and (Path(root).expanduser() / "train").is_dir():
        return replace(spec, num_classes=len(class_names(Path(root).expanduser())))
    return spec
