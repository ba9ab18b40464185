"""SVHN through torchvision's reader, from a local root (MNIST-like sets: ``idx.py``).

torchvision downloads only when ``data.download`` is true; a missing dataset is a one-line
``ConfigError`` that says how to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from resnetx.errors import ConfigError
from sweep.data.sources.base import RawSplits


def _open(name: str, factory: Any, root: Path, download: bool, **kwargs: Any) -> Any:
    try:
        return factory(str(root), download=download, **kwargs)
    except RuntimeError as exc:  # torchvision: "Dataset not found ..." / "... or corrupted"
        if download:
            raise ConfigError("data.download", True, f"could not get {name} into {root} ({exc})") from None
        raise ConfigError("data.root", str(root), f"has no {name}; set data.download=true to fetch it, "
                          "or data.root to where it is") from None
    except Exception as exc:  # network errors while downloading
        raise ConfigError("data.download", download, f"could not get {name} into {root} "
                          f"({type(exc).__name__}: {exc})") from None


def read_svhn(root: Path, download: bool) -> RawSplits:
    import torchvision.datasets as tvd

    folder = root / "svhn"
    train = _open("svhn", tvd.SVHN, folder, download, split="train")
    test = _open("svhn", tvd.SVHN, folder, download, split="test")
    return RawSplits(np.asarray(train.data, np.uint8), np.asarray(train.labels, np.int64),
                     np.asarray(test.data, np.uint8), np.asarray(test.labels, np.int64),
                     tuple(str(i) for i in range(10)))
