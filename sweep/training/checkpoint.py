"""Training checkpoints: written atomically, read with ``weights_only=True``, resumable exactly.

A checkpoint holds plain data only (tensors, numbers, strings, lists, dicts): model, optimizer
and schedule state, the epoch, the history so far, and every random stream the loop draws from
(torch CPU/CUDA, numpy, Python, the loop's own data generator), so training 2 + 2 epochs gives
bit-for-bit the weights of 4 straight epochs on CPU.

Atomic: written to a temporary file in the same folder, flushed to disk, then ``os.replace``-d,
so a crash, a Ray trial killed mid-write or a full disk never leaves a truncated
``checkpoint.pt``: the previous one stays, and a write that fails raises ``OSError``.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetx.errors import ConfigError

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1


def checkpoint_path(location: str | Path) -> Path:
    """``dir`` -> ``dir/checkpoint.pt``; a file path is returned as is."""
    path = Path(location)
    return path / CHECKPOINT_FILE if path.is_dir() or not path.suffix else path


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically; return the file."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_torch_save(folder / CHECKPOINT_FILE, {"format": FORMAT_VERSION, **state})


def save_weights(path: str | Path, state_dict: dict[str, Any]) -> Path:
    """A plain state dict (tensors only: loads with ``weights_only=True``), written atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_torch_save(target, {k: v.detach().cpu() for k, v in state_dict.items()})


def atomic_torch_save(target: Path, obj: Any) -> Path:
    """``torch.save`` to a temporary file, fsync, then rename: a reader never sees half a file."""
    folder = target.parent
    # Serialised in memory first: torch.save reports a full disk as an opaque RuntimeError
    # ("unexpected pos ..."); a plain write raises OSError with its errno (ENOSPC, EFBIG).
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(location: str | Path) -> dict[str, Any]:
    """Read a checkpoint (a folder holding ``checkpoint.pt`` or the file) on the CPU."""
    path = checkpoint_path(location)
    if not path.is_file():
        raise ConfigError("--resume", str(location), f"no {CHECKPOINT_FILE} there")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError("--resume", str(path), f"is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ConfigError("--resume", str(path), f"is not a checkpoint of format {FORMAT_VERSION}")
    return state


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream as plain data (tensors and ints), safe for ``weights_only`` loading."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
