"""CIFAR-10/100 from the python pickle batches torchvision uses, read without running pickled code.

The layout is torchvision's: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`` and ``<root>/cifar-100-python/{train, test, meta}``. The batches are pickles;
a restricted unpickler accepts only the plain containers and numpy arrays they hold, so a
tampered file cannot execute code (the ``weights_only=True`` rule, for data). torchvision is
used only to download, when ``data.download`` is true.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnetx.errors import ConfigError
from sweep.data.sources.base import RawSplits


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str


LAYOUTS = {
    "cifar10": CifarLayout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                           "batches.meta", "labels", "label_names", "CIFAR10"),
    "cifar100": CifarLayout("cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names",
                            "CIFAR100"),
}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArraysOnly(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        entry = _ArraysOnly(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ConfigError("data.root", str(path), f"is not a CIFAR batch file ({exc})") from None
    if not isinstance(entry, dict):
        raise ConfigError("data.root", str(path), "is not a CIFAR batch file (not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _read_batches(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for path in paths:
        entry = _load_pickle(path)
        if "data" not in entry or label_key not in entry:
            raise ConfigError("data.root", str(path), f"is not a CIFAR batch file (needs 'data' and '{label_key}')")
        xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, LAYOUTS[name].torchvision_class)
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as exc:  # offline, proxy, disk full: one line for the user
        raise ConfigError("data.download", True, f"could not download {name} into {root} "
                          f"({type(exc).__name__}: {exc}); place it there by hand") from None


def read_cifar(name: str, root: Path, download: bool) -> RawSplits:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    needed = [folder / f for f in (*layout.train_files, layout.test_file)]
    if not all(p.is_file() for p in needed):
        if not download:
            raise ConfigError("data.root", str(root), f"has no {name} ({layout.folder}/ missing or incomplete); "
                              "set data.download=true to fetch it, or data.root to where it is")
        _download(name, root)
    train_x, train_y = _read_batches(needed[:-1], layout.label_key)
    test_x, test_y = _read_batches(needed[-1:], layout.label_key)
    meta_path = folder / layout.meta_file
    names: tuple[str, ...] = ()
    if meta_path.is_file():
        names = tuple(str(n) for n in _load_pickle(meta_path).get(layout.names_key, ()))
    classes = int(max(train_y.max(initial=-1), test_y.max(initial=-1)) + 1)
    return RawSplits(train_x, train_y, test_x, test_y, names or tuple(str(i) for i in range(classes)))
