"""Data that does not fit on the device: batches streamed from the bundle through a torch DataLoader.

Two ways for a :class:`~sweep.data.load.DatasetBundle` to reach the training device:

- **resident** (the fast path, ``sweep.training.loop``): every split that is used is copied to
  the device once; each step gathers, crops and flips a batch there. No worker processes.
- **stream** (this module): the device holds one batch at a time. A ``DataLoader`` with worker
  processes gathers each batch from the bundle's arrays, crops and flips it on the CPU with
  :class:`~sweep.data.augment.BatchAugment` (the same zero padding, crop and flip), and hands it
  over as uint8 in pinned memory (on CUDA); the loop normalises it on the device with the
  bundle's mean/std (``to_input``), exactly as the resident path does.

:func:`choose_path` decides (``data.loader``: ``auto`` | ``resident`` | ``stream``): ``auto``
streams when what residency would put on the device (train + val, + test when it is evaluated)
is larger than ``data.resident_limit_mb`` MiB or, when that is unset, than the trial's own part of
the accelerator: its share of the device (``gpu_share``: a Ray trial's ``--gpus-per-trial``, 1.0
alone) times the device's total memory, less :data:`SHARE_MARGIN` of that share for the model, its
activations and workspace, and never more than what is free at that moment less the same margin.
Trials packed onto one GPU therefore each decide within their own share: four at 0.25 cannot all
claim half of the memory that is free before any of them has allocated. On the CPU the resident
path copies nothing (tensors share the bundle's numpy memory), so ``auto`` without a limit is
always resident there; a limit set explicitly applies on every device. The device's memory is
read through a :data:`MemoryQuery` (default :func:`device_memory`), which tests replace.

A resident plan whose copy to the device still runs out of memory (another process took it
meanwhile, a limit set too high) falls back to streaming (:func:`move_resident`, one log line)
instead of failing the trial.

Randomness: the epoch's order and each batch's crop/flip come from seeds derived from
(``train.seed``, epoch, batch index), not from a stream carried across batches. The batches are
therefore the same for any number of workers, and a run resumed from an epoch's checkpoint
continues exactly (checkpoints are written only at epoch ends). The random numbers differ from
the resident path's (one device generator), so the two paths train the same way, not bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from sweep.config.experiment import DataConfig
from sweep.data.augment import BatchAugment
from sweep.data.load import DatasetBundle

PATH_RESIDENT, PATH_STREAM = "resident", "stream"
# Of the trial's share of the device, kept free of resident data (for the model, activations,
# optimizer state and workspace), when data.resident_limit_mb is unset.
SHARE_MARGIN = 0.1
MIB = 2**20
# (free, total) bytes of an accelerator now; None for the CPU (residency there copies nothing).
MemoryQuery = Callable[[torch.device], tuple[int, int] | None]
_LOG = logging.getLogger(__name__)
_ORDER, _AUGMENT = 0, 1  # seed domains: an epoch's order, a batch's crop/flip


# -- the choice ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DataPlan:
    """How the data reaches the device: ``path`` (resident or stream), why, and the sizes compared."""

    path: str
    reason: str
    resident_mb: float  # what the resident path would copy to the device
    limit_mb: float | None  # the limit compared against (None: no limit applies)
    workers: int  # DataLoader worker processes (streaming only; 0 when resident)

    def info(self) -> dict[str, Any]:
        """The entries of ``TrainResult.info`` (``data_path`` is what to log as a param)."""
        return {"data_path": self.path, "data_plan": self.reason, "data_resident_mb": round(self.resident_mb, 3),
                "data_limit_mb": None if self.limit_mb is None else round(self.limit_mb, 3),
                "data_workers": self.workers}


def resident_bytes(data: DatasetBundle, evaluate_test: bool) -> int:
    """Bytes the resident path puts on the device: train and val splits, the test split only when evaluated."""
    arrays = [data.train_x, data.train_y, data.val_x, data.val_y]
    if evaluate_test:
        arrays += [data.test_x, data.test_y]
    return int(sum(a.nbytes for a in arrays))


def device_memory(device: torch.device) -> tuple[int, int] | None:
    """(free, total) bytes of an accelerator now; None for the CPU (the default :data:`MemoryQuery`)."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return int(free), int(total)
    if device.type == "mps":
        total = int(torch.mps.recommended_max_memory())
        return max(0, total - int(torch.mps.driver_allocated_memory())), total
    return None


def default_workers() -> int:
    """Half the process's torch threads (a Ray trial sets them to its CPUs), at least 1, at most 4."""
    return max(1, min(4, torch.get_num_threads() // 2))


def share_limit_mb(memory: tuple[int, int], gpu_share: float) -> tuple[float, str]:
    """The most MiB of resident data a trial with ``gpu_share`` of a device with ``memory`` (free,
    total bytes) may hold, and how it was found (see the module docstring)."""
    free, total = memory
    share = min(1.0, gpu_share)
    own = share * total
    margin = SHARE_MARGIN * own
    limit = max(0.0, min(own - margin, free - margin)) / MIB
    return limit, (f"{share:g} of {total / MIB:.4g} MiB less {SHARE_MARGIN:g} of it, "
                   f"{free / MIB:.4g} MiB free")


def choose_path(cfg: DataConfig, data: DatasetBundle, device: torch.device, evaluate_test: bool, *,
                gpu_share: float = 1.0, memory: MemoryQuery | None = None) -> DataPlan:
    """Resident when it fits (or is asked for), else stream; see the module docstring for the rule.

    ``gpu_share``: the part of ``device`` this training owns (a Ray trial's assigned GPUs, at most 1;
    1.0 when alone). ``memory``: how the device's free and total memory are read (default
    :func:`device_memory`).
    """
    if not gpu_share > 0:
        raise ValueError(f"gpu_share must be > 0; got {gpu_share!r}")
    need = resident_bytes(data, evaluate_test) / MIB
    workers = cfg.workers if cfg.workers is not None else default_workers()
    limit: float | None = cfg.resident_limit_mb
    source = "data.resident_limit_mb"
    if limit is None:
        found = (memory or device_memory)(device)
        if found is not None:
            limit, source = share_limit_mb(found, gpu_share)
            source = f"{device.type}: {source}"
    path: str
    if cfg.loader != "auto":
        path, reason = cfg.loader, f"{cfg.loader}: asked for (data.loader)"
    elif limit is None:
        path, reason = PATH_RESIDENT, f"resident: {need:.3g} MiB shared with the host arrays (cpu, no limit set)"
    elif need > limit:
        path, reason = PATH_STREAM, f"stream: {need:.3g} MiB > {limit:.3g} MiB ({source})"
    else:
        path, reason = PATH_RESIDENT, f"resident: {need:.3g} MiB <= {limit:.3g} MiB ({source})"
    return DataPlan(path, reason, need, limit, workers if path == PATH_STREAM else 0)


def move_resident(plan: DataPlan, arrays: Sequence[np.ndarray], move: Callable[[np.ndarray], Tensor],
                  device: torch.device, workers: int | None = None) -> tuple[list[Tensor] | None, DataPlan]:
    """Copy ``arrays`` to the device with ``move`` for a resident ``plan``: (the tensors, ``plan``).

    If the device runs out of memory on the way (``torch.OutOfMemoryError``), what was copied is
    given back and the answer is (None, the plan switched to streaming with ``workers``, default
    :func:`default_workers`), logged in one line: the trial trains, more slowly, instead of failing.
    """
    moved: list[Tensor] = []
    try:
        for array in arrays:
            moved.append(move(array))
    except torch.OutOfMemoryError as exc:
        moved.clear()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fallback = replace(plan, path=PATH_STREAM, workers=workers if workers is not None else default_workers(),
                           reason=f"stream: out of {device.type} memory moving {plan.resident_mb:.3g} MiB "
                                  f"resident ({first[:160]}); planned {plan.reason}")
        _LOG.warning("data: %s", fallback.reason)
        return None, fallback
    return moved, plan


# -- the stream ---------------------------------------------------------------------------
def _seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (numpy's SeedSequence: stable across runs and platforms)."""
    return int(np.random.SeedSequence([p % 2**64 for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class BatchKey(NamedTuple):
    """What a worker needs to build one batch: which images, and the batch's place for its seed."""

    epoch: int
    batch: int
    indices: np.ndarray


class ArrayBatches(Dataset):
    """Whole batches of a split: ``dataset[BatchKey]`` -> (uint8 ``(B, C, H, W)``, int64 ``(B,)``) CPU tensors.

    Batch-level, not per image: one fancy-index gather and one crop/flip per batch in the
    worker, no per-image Python. Works on any array-like that numpy can index (a memmap too).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: BatchAugment | None, seed: int) -> None:
        self.x, self.y, self.augment, self.seed = x, y, augment, seed

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, key: BatchKey) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        # Fancy indexing copies: the batch is writable even when the bundle's arrays are read-only.
        x = torch.from_numpy(np.ascontiguousarray(self.x[key.indices]))
        y = torch.from_numpy(np.asarray(self.y[key.indices], dtype=np.int64))
        if self.augment is not None:
            generator = torch.Generator().manual_seed(_seed(self.seed, _AUGMENT, key.epoch, key.batch))
            x = self.augment(x, generator)
        return x, y


class EpochBatches(Sampler[BatchKey]):
    """The keys of one epoch: a seeded permutation (training) or the split in order (evaluation).

    Lives in the training process, so setting :attr:`epoch` between epochs works with
    persistent workers. ``steps`` batches of ``batch_size`` (the last may be shorter).
    """

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, shuffle: bool) -> None:
        self.n, self.batch_size, self.steps, self.seed, self.shuffle = n, batch_size, steps, seed, shuffle
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[BatchKey]:
        if self.shuffle:
            order = np.random.default_rng(_seed(self.seed, _ORDER, self.epoch)).permutation(self.n)
        else:
            order = np.arange(self.n)
        for b in range(self.steps):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            if len(chunk):
                yield BatchKey(self.epoch, b, chunk)


def _loader(dataset: ArrayBatches, sampler: EpochBatches, workers: int, pin: bool, persistent: bool) -> DataLoader:
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=workers, pin_memory=pin,
                      persistent_workers=persistent and workers > 0, prefetch_factor=4 if workers > 0 else None)


class StreamedBundle:
    """The training, validation and test splits of a bundle as DataLoaders of uint8 CPU batches."""

    def __init__(self, data: DatasetBundle, *, batch_size: int, steps_per_epoch: int, eval_batch_size: int,
                 seed: int, augment: BatchAugment | None, workers: int, pin_memory: bool) -> None:
        self._train_sampler = EpochBatches(len(data.train_y), batch_size, steps_per_epoch, seed, shuffle=True)
        self.train = _loader(ArrayBatches(data.train_x, data.train_y, augment, seed), self._train_sampler,
                             workers, pin_memory, persistent=True)
        self._splits = {"val": (data.val_x, data.val_y), "test": (data.test_x, data.test_y)}
        self._eval: dict[str, DataLoader] = {}
        self.eval_batch_size, self.seed, self.workers, self.pin_memory = eval_batch_size, seed, workers, pin_memory

    def train_batches(self, epoch: int) -> DataLoader:
        """The batches of training epoch ``epoch`` (1-based), in their seeded order."""
        self._train_sampler.epoch = epoch
        return self.train

    def eval_batches(self, split: str) -> DataLoader:
        """``val`` or ``test`` in order, un-augmented, made when first asked for.

        The validation loader keeps its workers (it runs every epoch); the test split is read once.
        """
        if split not in self._eval:
            x, y = self._splits[split]
            steps = -(-len(y) // self.eval_batch_size)
            sampler = EpochBatches(len(y), self.eval_batch_size, steps, self.seed, shuffle=False)
            self._eval[split] = _loader(ArrayBatches(x, y, None, self.seed), sampler, self.workers,
                                        self.pin_memory, persistent=split == "val")
        return self._eval[split]
