"""The Ray Tune function trainable: one trial = one ``sweep.training.train`` call.

In the spirit of Ray Tune's examples: read the config, restore from ``tune.get_checkpoint()``,
report once per epoch with a checkpoint. What a trial cannot recover from by retrying (an
invalid config, running out of memory, a diverged loss) ends the trial normally with a
``status`` in its last result, so ``FailureConfig`` retries only what may be transient (a killed
worker, a lost node).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reports.schema import STATUS_DIVERGED, STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING

# Keys every report carries besides the epoch metrics.
STATIC_KEYS = ("params", "flops", "latency_ms")


def _assigned_cpus() -> int:
    import ray

    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:
        cpus = 1
    return max(1, round(cpus))


def _static_metrics(cfg: Any, input_size: tuple[int, int, int]) -> dict[str, float]:
    """Size and cost do not depend on the weights: measure once, before training, on the trial's device.

    Every report then carries them, so any objective (params, FLOPs, latency) is known even for
    a trial that a scheduler stops after one epoch.
    """
    from resnetx import build_model, count_flops, count_params, measure_latency
    from sweep.training import resolve_device

    model = build_model(cfg.model)
    return {
        "params": count_params(model),
        "flops": count_flops(model, input_size),
        "latency_ms": measure_latency(model, input_size, batch_size=1, device=resolve_device(cfg.train.device),
                                      warmup=2, repeats=5),
    }


def run_trial(config: dict, data: Any = None) -> None:
    """Train one experiment config under Ray Tune (``config["experiment"]`` is the nested config)."""
    import ray
    import torch
    from ray import tune

    from resnetx.errors import ConfigError
    from sweep.data import load_dataset
    from sweep.experiment import ExperimentConfig
    from sweep.training import train

    node_id = ray.get_runtime_context().get_node_id()
    base = {"config_hash": config.get("config_hash", ""), "node_id": node_id}
    try:
        raw = dict(config["experiment"])
        raw.setdefault("train", {})
        if raw["train"].get("num_threads") is None:
            raw["train"] = {**raw["train"], "num_threads": _assigned_cpus()}
        cfg = ExperimentConfig(**raw)
        torch.set_num_threads(cfg.train.num_threads or 1)
        bundle = data if data is not None else load_dataset(cfg.data)
        static = _static_metrics(cfg, bundle.input_shape)
    except ConfigError as exc:
        tune.report({**base, "status": STATUS_FAILED, "error": f"invalid config: {exc}"})
        return

    epochs = cfg.train.epochs
    work = Path(tempfile.mkdtemp(prefix="resnetx-trial-"))
    best = {"val_acc": float("-inf")}
    started = time.perf_counter()

    def on_epoch(metrics: dict, checkpoint_dir: Path | None) -> None:
        best["val_acc"] = max(best["val_acc"], float(metrics.get("val_acc", float("-inf"))))
        done = int(metrics.get("epoch", 0)) >= epochs
        status = STATUS_FINISHED if done else STATUS_RUNNING
        if not math.isfinite(float(metrics.get("train_loss", 0.0))):
            status = STATUS_DIVERGED  # train() stops after this epoch; never retried
        payload = {**base, **metrics, **static, "best_val_acc": best["val_acc"], "status": status,
                   "train_time_s": time.perf_counter() - started}
        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report(payload, checkpoint=checkpoint)

    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as resume_dir:
                result = train(cfg, data=bundle, on_epoch=on_epoch, checkpoint_dir=work, resume_from=resume_dir)
        else:
            result = train(cfg, data=bundle, on_epoch=on_epoch, checkpoint_dir=work)
    except torch.OutOfMemoryError as exc:
        tune.report({**base, **static, "status": STATUS_FAILED, "error": f"out of memory: {exc}"[:500]})
        return
    except ConfigError as exc:
        tune.report({**base, **static, "status": STATUS_FAILED, "error": f"invalid config: {exc}"})
        return
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.status != STATUS_DIVERGED and "test_acc" in result.final:
        last = result.history[-1] if result.history else {}
        tune.report({**base, **last, **static, "best_val_acc": best["val_acc"], "status": STATUS_FINISHED,
                     "test_acc": result.final["test_acc"], "train_time_s": time.perf_counter() - started})
