"""A user's image folder: ``<root>/train/<class>/*.png|jpg|...`` plus optional ``val/`` and ``test/``.

Images are decoded once (RGB, resized to a square ``image_size``) into one uint8 array, so
training never touches files again. Class names come from ``train/``; ``val/`` and ``test/``
must use the same names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from resnetx.errors import ConfigError
from sweep.config.datasets import class_names
from sweep.data.sources.base import RawSplits, empty_images

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _read_split(folder: Path, names: tuple[str, ...], size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    index = {name: i for i, name in enumerate(names)}
    images, labels = [], []
    for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if cls_dir.name not in index:
            raise ConfigError("data.root", str(cls_dir), f"class not in train/ (known: {', '.join(names)})")
        for path in sorted(cls_dir.iterdir()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            try:
                with Image.open(path) as img:
                    rgb = img.convert("RGB").resize((size, size), Image.BILINEAR)
            except OSError as exc:
                raise ConfigError("data.root", str(path), f"is not a readable image ({exc})") from None
            images.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
            labels.append(index[cls_dir.name])
    if not images:
        return empty_images(3, size)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def read_imagefolder(root: Path, size: int) -> RawSplits:
    names = class_names(root)
    train_x, train_y = _read_split(root / "train", names, size)
    if len(train_x) == 0:
        raise ConfigError("data.root", str(root), "train/ holds no images")
    test_x, test_y = _read_split(root / "test", names, size) if (root / "test").is_dir() else empty_images(3, size)
    raw = RawSplits(train_x, train_y, test_x, test_y, names)
    if (root / "val").is_dir():
        raw.val_x, raw.val_y = _read_split(root / "val", names, size)
    return raw
