"""A deterministic stand-in for the ResNetX trainable: ``resnetx sweep --trainable synthetic``.

Why: the fault tests exercise the sweep machinery (searcher, Tune, the MLflow callback, resume,
time limits, failure handling), not training. Real training makes them slow, and its accuracy
varies across machines, so "the front after a resume equals the front of an uninterrupted
sweep" could not be checked exactly. The stand-in is a real Ray Tune function trainable that:

- reports every epoch the keys ``run_trial`` reports (``epoch, val_acc, val_loss, train_loss,
  epoch_time_s, images_per_s, lr, params, flops, latency_ms, best_val_acc, status,
  config_hash, node_id, train_time_s``);
- takes ``params``/``flops`` from the real config (counted on the meta device, no memory) and
  makes ``val_acc`` a deterministic function of the parameter count, the config hash and the
  seed; ``latency_ms`` is derived from the FLOPs (nothing is measured);
- sleeps ``epoch_s`` seconds per epoch and writes a real checkpoint (``sweep.training.checkpoint``)
  every epoch, restoring from ``tune.get_checkpoint()`` when Tune retries or resumes it;
- handles out-of-memory and invalid configs with ``sweep.tune.trainable.failure_report``, the code
  ``run_trial`` uses, so a fault test of the stand-in tests the real failure handling.

Options and injected faults come from ``$RESNETX_STANDIN`` (JSON), read on the driver when the
sweep starts (tests set it; nobody else needs to)::

    {"epoch_s": 0.3, "checkpoint_kb": 4, "attempts_dir": "/tmp/attempts", "file_size_limit_kb": null,
     "faults": [{"when": {"train.lr": 0.02}, "fault": "hang", "epoch": 2}]}

``when`` matches flattened experiment-config values (``model.base``, ``train.lr``, ...).
Faults, all at the start of epoch ``epoch``: ``hang`` (blocks forever without reporting),
``oom`` (raises ``torch.OutOfMemoryError``), ``crash`` (raises ``RuntimeError``, a transient
failure that Tune retries), ``big_checkpoint`` (that epoch's checkpoint carries ``kb`` more
KiB). ``attempts_dir`` receives one line per trial start (``<config_hash>.attempts``: the epoch
it resumed from), so tests count attempts exactly. ``file_size_limit_kb`` sets RLIMIT_FSIZE in
the trial's process: a storage-full stand-in for machines where a test may not mount a tmpfs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetx.errors import ConfigError

STANDIN_ENV = "RESNETX_STANDIN"
FAULTS = ("hang", "oom", "crash", "big_checkpoint")


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``fault`` happens at the start of ``epoch`` in trials matching ``when``."""

    when: dict[str, Any]
    fault: str
    epoch: int = 1
    kb: int = 0

    def matches(self, flat: dict[str, Any]) -> bool:
        return all(key in flat and flat[key] == value for key, value in self.when.items())


@dataclass(frozen=True)
class StandinOptions:
    """How the stand-in behaves; plain data, so it travels to the trials with ``tune.with_parameters``."""

    epoch_s: float = 0.2
    checkpoint_kb: int = 1
    attempts_dir: str | None = None
    file_size_limit_kb: int | None = None
    faults: tuple[Fault, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls) -> StandinOptions:
        text = os.environ.get(STANDIN_ENV, "").strip()
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            faults = tuple(Fault(**f) for f in raw.pop("faults", []))
            options = cls(**raw, faults=faults)
        except (ValueError, TypeError) as exc:
            raise ConfigError(STANDIN_ENV, text[:80], f"must be JSON of StandinOptions ({exc})") from None
        for fault in options.faults:
            if fault.fault not in FAULTS:
                raise ConfigError(f"{STANDIN_ENV}.faults", fault.fault, f"must be one of {', '.join(FAULTS)}")
        return options


def synthetic_val_acc(params: int, config_hash: str, seed: int, epoch: int) -> float:
    """Deterministic accuracy: rises with epochs and (saturating) with size, plus a per-config offset."""
    unit = int(hashlib.sha256(f"{config_hash}:{seed}".encode()).hexdigest()[:12], 16) / 16**12
    ceiling = 0.55 + 0.35 * (1.0 - math.exp(-params / 30000.0)) + 0.08 * unit
    return round(ceiling * (1.0 - 0.6**epoch), 6)


def _record_attempt(options: StandinOptions, config_hash: str, start_epoch: int) -> None:
    if options.attempts_dir:
        folder = Path(options.attempts_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{config_hash}.attempts", "a") as handle:
            handle.write(f"{start_epoch}\n")


def _static(cfg: Any) -> dict[str, float]:
    from resnetx import count_flops, count_params
    from sweep.config.datasets import dataset_meta

    size = cfg.data.effective_image_size
    channels = dataset_meta(cfg.data.name, cfg.data.root).in_channels or cfg.model.in_channels
    flops = count_flops(cfg.model, (channels, size, size))
    return {"params": count_params(cfg.model), "flops": flops, "latency_ms": round(flops / 1e8, 6)}


def _inject(fault: Fault) -> None:
    import torch

    if fault.fault == "hang":
        threading.Event().wait()  # never set: a trial stuck without reporting
    if fault.fault == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (stand-in fault)")
    if fault.fault == "crash":
        raise RuntimeError("stand-in crash (transient fault)")


def synthetic_trial(config: dict, options: StandinOptions | None = None) -> None:
    """The stand-in trainable (see the module docstring)."""
    import ray
    import torch
    from ray import tune

    from reports.schema import STATUS_FINISHED, STATUS_RUNNING
    from sweep.config.experiment import ExperimentConfig
    from sweep.training.checkpoint import load_checkpoint, save_checkpoint
    from sweep.training.loop import lr_at
    from sweep.tune.trainable import failure_report, report_with_checkpoint

    options = options or StandinOptions()
    if options.file_size_limit_kb is not None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (options.file_size_limit_kb * 1024, hard))
    config_hash = config.get("config_hash", "")
    base = {"config_hash": config_hash, "node_id": ray.get_runtime_context().get_node_id()}
    static: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="resnetx-standin-"))
    try:
        cfg = ExperimentConfig(**config["experiment"])
        static = _static(cfg)
        flat = cfg.flat()
        faults = [f for f in options.faults if f.matches(flat)]
        start, history = 0, []
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                state = load_checkpoint(folder)
            start, history = int(state["epoch"]), list(state["history"])
        _record_attempt(options, config_hash, start)
        started = time.perf_counter()
        for epoch in range(start + 1, cfg.train.epochs + 1):
            epoch_started = time.perf_counter()
            extra_kb = 0
            for fault in faults:
                if fault.epoch == epoch:
                    _inject(fault)
                    extra_kb += fault.kb if fault.fault == "big_checkpoint" else 0
            time.sleep(options.epoch_s)
            acc = synthetic_val_acc(int(static["params"]), config_hash, cfg.train.seed, epoch)
            elapsed = time.perf_counter() - epoch_started
            metrics = {"epoch": epoch, "val_acc": acc, "val_loss": -math.log(max(acc, 1e-6)),
                       "train_loss": -math.log(max(acc, 1e-6)) * 0.9, "epoch_time_s": elapsed,
                       "images_per_s": 1000.0 / elapsed, "lr": lr_at(cfg.train, epoch)}
            metrics["tse"] = sum(h["train_loss"] for h in history) + metrics["train_loss"]
            history.append(metrics)
            padding = torch.zeros((options.checkpoint_kb + extra_kb) * 256, dtype=torch.float32)
            save_checkpoint(work, {"epoch": epoch, "history": history, "config_hash": config_hash,
                                   "padding": padding})
            done = epoch >= cfg.train.epochs
            report_with_checkpoint({**base, **metrics, **static, "best_val_acc": max(h["val_acc"] for h in history),
                                    "status": STATUS_FINISHED if done else STATUS_RUNNING,
                                    "train_time_s": time.perf_counter() - started}, work)
    except Exception as exc:
        report = failure_report(base, static, exc)
        if report is None:
            raise
        tune.report(report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
