"""The Ray Tune function trainable: one trial = one ``sweep.training.loop.train`` call.

In the spirit of Ray Tune's examples: read the config, restore from ``tune.get_checkpoint()``,
report once per epoch with a checkpoint. What a trial cannot recover from by retrying (an
invalid config, running out of memory, a diverged loss) ends the trial normally with a
``status`` in its last result, so ``FailureConfig`` retries only what may be transient (a killed
worker, a lost node).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reports.schema import PARAM_DATA_PATH, STATUS_DIVERGED, STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING
from resnetx.errors import ConfigError

# Keys every report carries besides the epoch metrics.
STATIC_KEYS = ("params", "flops", "latency_ms")


def assigned_resource(name: str, default: float) -> float:
    """What Ray assigned this worker of resource ``name`` (``default`` outside a Ray worker).

    Only Ray's own "not a worker" answer (an AssertionError, Ray 2.60) means the default: any
    other error, e.g. a renamed API in another Ray version, surfaces instead of silently
    training on one CPU without a GPU.
    """
    import ray

    try:
        resources = ray.get_runtime_context().get_assigned_resources()
    except AssertionError:  # "This method is only available when the process is a worker"
        return default
    return float(resources.get(name, default))


def _assigned_cpus() -> int:
    return max(1, round(assigned_resource("CPU", 1)))


def _static_metrics(cfg: Any, input_size: tuple[int, int, int], latency: bool) -> dict[str, float]:
    """Size and cost do not depend on the weights: measured once, before training, on the trial's device.

    Every report then carries them, so any objective (params, FLOPs, latency) is known even for
    a trial that a scheduler stops after one epoch; ``train()`` reports these instead of measuring
    again. Latency only when it is an objective (``sweep.training.costs`` says how it is measured).
    """
    from resnetx import build_model
    from sweep.training.costs import measure_costs, numeric
    from sweep.training.loop import resolve_device

    return numeric(measure_costs(build_model(cfg.model), input_size, resolve_device(cfg.train.device), latency))


def out_of_memory(exc: BaseException) -> bool:
    """True for every way PyTorch says memory ran out: CUDA's ``torch.OutOfMemoryError``, Python's
    ``MemoryError`` and the CPU allocator's plain ``RuntimeError`` ("DefaultCPUAllocator: can't
    allocate memory"), which ``torch.OutOfMemoryError`` does not cover. Retrying would fail again."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("DefaultCPUAllocator" in text or "can't allocate memory" in text
                                              or "not enough memory" in text)


def failure_report(base: dict, static: dict, exc: BaseException) -> dict | None:
    """The last result of a trial that cannot succeed by retrying, or None for a transient error.

    Shared with the stand-in trainable (tests/support/standin.py), so the fault tests exercise this code.
    """

    if out_of_memory(exc):
        return {**base, **static, "status": STATUS_FAILED, "error": f"out of memory: {exc}"[:500]}
    if isinstance(exc, ConfigError):
        return {**base, **static, "status": STATUS_FAILED, "error": f"invalid config: {exc}"}
    return None


def report_with_checkpoint(payload: dict, checkpoint_dir: str | Path | None) -> None:
    """``tune.report`` with the checkpoint folder, giving back the space of a copy that failed.

    Tune copies the checkpoint into the trial's folder under the storage path. When that copy
    fails (storage full, quota), the half-written ``checkpoint_NNNNNN`` folder would stay and
    keep the storage full for every other trial and for the sweep's own state: it is removed,
    and the error (re-raised) fails only this trial, whose previous checkpoint stays the latest.
    """
    from ray import tune

    if checkpoint_dir is None:
        tune.report(payload)
        return
    storage = _TrialStorage.current()
    before = storage.checkpoints() if storage else set()
    try:
        tune.report(payload, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
    except OSError:
        if storage is not None:
            storage.remove(storage.checkpoints() - before)
        raise


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    import warnings

    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


class _TrialStorage:
    """This trial's folder on the storage filesystem (local, NFS or an object store).

    Found through Ray's storage context (``session.storage``); Tune's public
    ``get_trial_dir()`` is the driver-side staging folder, not the storage.
    """

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    @classmethod
    def current(cls) -> _TrialStorage | None:
        """This trial's storage, or None outside a Tune session. Ray's storage context is internal
        API: where it moved (another Ray version) the clean-up is skipped with a warning, never silently."""
        try:
            from ray.train._internal.session import get_session
        except ImportError as exc:
            _warn_once(f"no checkpoint clean-up on a failed copy: {exc}")
            return None
        session = get_session()
        if session is None:
            return None
        storage = session.storage
        return cls(storage.storage_filesystem, storage.trial_fs_path)

    def checkpoints(self) -> set[str]:
        import pyarrow.fs

        try:
            infos = self.fs.get_file_info(pyarrow.fs.FileSelector(self.path, allow_not_found=True))
        except OSError:
            return set()
        folder = pyarrow.fs.FileType.Directory
        return {i.path for i in infos if i.type == folder and i.base_name.startswith("checkpoint_")}

    def remove(self, paths: set[str]) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                self.fs.delete_dir(path)


def run_trial(config: dict, data: Any = None) -> None:
    """Train one experiment config under Ray Tune (``config["experiment"]`` is the nested config)."""
    import ray
    from ray import tune

    from sweep.config.experiment import ExperimentConfig
    from sweep.data.load import load_dataset
    from sweep.training.loop import data_plan, setup_torch, train

    node_id = ray.get_runtime_context().get_node_id()
    base = {"config_hash": config.get("config_hash", ""), "node_id": node_id}
    try:
        raw = dict(config["experiment"])
        raw.setdefault("train", {})
        if raw["train"].get("num_threads") is None:
            raw["train"] = {**raw["train"], "num_threads": _assigned_cpus()}
        gpus = _assigned_gpus()
        if raw["train"].get("device", "auto") == "auto" and not gpus:
            raw["train"] = {**raw["train"], "device": "cpu"}  # Ray leaves CUDA visible to 0-GPU trials
        cfg = ExperimentConfig(**raw)
        setup_torch(cfg.train)
        bundle = data if data is not None else load_dataset(cfg.data)
        # Resident data within this trial's share of its GPU (--gpus-per-trial 0.25: a quarter of it).
        plan = data_plan(cfg, bundle, gpu_share=gpu_share(gpus))
        base[PARAM_DATA_PATH] = plan.path  # resident or streamed: logged as a param
        # builds the model (may run out of memory); latency only when an objective needs it
        static = _static_metrics(cfg, bundle.input_shape, latency=bool(config.get("measure_latency")))
    except Exception as exc:
        report = failure_report(base, {}, exc)
        if report is None:
            raise
        tune.report(report)
        return

    epochs = cfg.train.epochs
    checkpoint = tune.get_checkpoint()
    earlier = saved_history(checkpoint)  # a retried or resumed trial continues its best and its clock
    best = {"val_acc": max((float(h["val_acc"]) for h in earlier), default=float("-inf"))}
    started = time.perf_counter() - sum(float(h.get("epoch_time_s", 0.0)) for h in earlier)

    def on_epoch(metrics: dict, checkpoint_dir: Path | None) -> None:
        best["val_acc"] = max(best["val_acc"], float(metrics.get("val_acc", float("-inf"))))
        done = int(metrics.get("epoch", 0)) >= epochs
        status = STATUS_FINISHED if done else STATUS_RUNNING
        if not math.isfinite(float(metrics.get("train_loss", 0.0))):
            status = STATUS_DIVERGED  # train() stops after this epoch; never retried
        payload = {**base, **metrics, **static, "best_val_acc": best["val_acc"], "status": status,
                   "train_time_s": time.perf_counter() - started}
        report_with_checkpoint(payload, checkpoint_dir)

    # Made only now, and removed in the ``finally`` below: a corrupt checkpoint (``_history``
    # raises, Tune retries) must not leave a folder behind on every retry.
    work = Path(tempfile.mkdtemp(prefix="resnetx-trial-"))
    try:
        if checkpoint is not None:
            with checkpoint.as_directory() as resume_dir:
                train(cfg, data=bundle, on_epoch=on_epoch, checkpoint_dir=work, resume_from=resume_dir, costs=static,
                      plan=plan)
        else:
            train(cfg, data=bundle, on_epoch=on_epoch, checkpoint_dir=work, costs=static, plan=plan)
    except Exception as exc:  # out of memory or an invalid config: not retried (see failure_report)
        report = failure_report(base, static, exc)
        if report is None:
            raise
        tune.report(report)
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Everything, test_acc included (train() puts it in the last epoch's metrics), went out with the
    # last epoch's report: a trial is never reported twice for one epoch.


def _assigned_gpus() -> float:
    return assigned_resource("GPU", 0.0)


def gpu_share(assigned_gpus: float) -> float:
    """The part of its training device a trial owns: its fraction of one GPU (``--gpus-per-trial 0.25``),
    the whole device when it has one or more GPUs (it trains on one), 1.0 without a GPU (the CPU)."""
    return min(1.0, assigned_gpus) if assigned_gpus > 0 else 1.0


def saved_history(checkpoint: Any) -> list[dict]:
    """The epochs a checkpoint has already trained, each its metrics (empty for a fresh trial)."""
    if checkpoint is None:
        return []
    from sweep.training.checkpoint import load_checkpoint

    with checkpoint.as_directory() as folder:
        return [dict(h) for h in load_checkpoint(folder).get("history", [])]
