"""The sweep's own first stage: the networks that ``train.weights: pretrained`` trials warm-start from.

The seed's transfer experiment loads a trained ResNet into each folded network and fine-tunes
it. Offline, the trained ResNet comes from the sweep itself: a space with a ``pretrain:``
section names overrides (say ``model.fold: 1``, ``train.epochs: 5``) that turn a trial's config
into the config of the network it starts from. Before any trial runs, the runner trains every
distinct pretrain config once (as Ray tasks, in parallel, with the trials' resources) and writes
its weights under the sweep's Tune folder; each trial's ``train.weights`` then names that file,
so the trial config that is logged and exported is complete and reproducible with
``resnetx train``. A resumed sweep finds the files and trains nothing again.

Replicates keep apart: a trial of replicate seed ``r`` starts from the pretrain of seed ``r``.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetx.errors import ConfigError
from search_spaces.schema import PRETRAINED
from sweep.config.experiment import trial_key
from sweep.config.overrides import merge
from sweep.training.seeding import derive_seed

PRETRAIN_FOLDER = "pretrained"  # under the sweep's own folder, <tune folder>-resnetx (runner.own_folder)


@dataclass(frozen=True)
class PretrainJob:
    """One network of the first stage: its key, its full config, and where its weights go."""

    key: str
    config: dict
    path: str


def uses_pretrained(config: Mapping[str, Any]) -> bool:
    return (config.get("train") or {}).get("weights") == PRETRAINED


def pretrain_job(config: Mapping[str, Any], pretrain: Mapping[str, Any], folder: str | Path,
                 sweep_seed: int) -> PretrainJob:
    """The pretrain network of a trial config: the trial's config with the stage's overrides, from scratch."""
    stage = {"model": dict(pretrain.get("model") or {}),
             "train": {**(pretrain.get("train") or {}), "weights": None, "freeze": "none"}}
    cfg = merge(config, stage)
    key = trial_key(cfg, seed_is_axis=True)  # a replicate's seed keeps its pretrain apart
    cfg["train"]["seed"] = derive_seed(sweep_seed, PRETRAIN_FOLDER, key)
    return PretrainJob(key, cfg, str(Path(folder) / f"{key}.pt"))


def resolve_pretrained(config: dict, *, pretrain: Mapping[str, Any] | None, folder: str, sweep_seed: int) -> dict:
    """``config`` with ``train.weights: pretrained`` replaced by its pretrain network's file."""
    if pretrain is None or not uses_pretrained(config):
        return config
    resolved = copy.deepcopy(config)
    resolved["train"]["weights"] = pretrain_job(config, pretrain, folder, sweep_seed).path
    return resolved


def plan_pretrain(space: Any, overrides: Mapping[str, Any], folder: str, sweep_seed: int) -> list[PretrainJob]:
    """Every distinct pretrain network the space's trials need (none without a ``pretrain:`` section)."""
    if space.pretrain is None:
        if any(uses_pretrained(merge(p, overrides)) for p in (space.grid() if space.is_grid else [])):
            raise ConfigError("train.weights", PRETRAINED, f"space {space.name!r} has no pretrain: section")
        return []
    if not space.is_grid:
        raise ConfigError("pretrain", space.name, "needs a grid space: its networks are trained before the "
                          "trials, so every trial must be known in advance")
    if "://" in folder:
        raise ConfigError("--storage-path", folder, "a pretrain stage writes weights files: use a local or "
                          "shared (NFS) path, not an object store URI")
    jobs: dict[str, PretrainJob] = {}
    for point in space.grid():
        config = merge(point, overrides)
        if uses_pretrained(config):
            job = pretrain_job(config, space.pretrain, folder, sweep_seed)
            jobs.setdefault(job.key, job)
    return list(jobs.values())


def _train_one(config: dict, path: str, data: Any = None) -> dict[str, Any]:
    """A Ray task: train one pretrain network, write its state dict (atomically), return its metrics."""
    import ray

    from sweep.config.experiment import ExperimentConfig
    from sweep.data.load import load_dataset
    from sweep.training.checkpoint import load_checkpoint, save_weights
    from sweep.training.loop import data_plan, setup_torch, train
    from sweep.tune.trainable import gpu_share

    resources = ray.get_runtime_context().get_assigned_resources()
    raw = copy.deepcopy(config)
    raw["train"].setdefault("num_threads", max(1, round(resources.get("CPU", 1))))
    if raw["train"].get("device", "auto") == "auto" and not resources.get("GPU"):
        raw["train"]["device"] = "cpu"
    cfg = ExperimentConfig(**raw)
    setup_torch(cfg.train)
    bundle = data if data is not None else load_dataset(cfg.data)
    plan = data_plan(cfg, bundle, gpu_share=gpu_share(resources.get("GPU", 0)))  # its share of a packed GPU
    with tempfile.TemporaryDirectory(prefix="resnetx-pretrain-") as work:
        result = train(cfg, data=bundle, checkpoint_dir=work, plan=plan)
        if result.status != "finished":
            raise RuntimeError(f"pretrain network {Path(path).stem} {result.status}; lower its train.lr")
        save_weights(path, load_checkpoint(work)["model"])
    return {"key": Path(path).stem, "path": path, "epochs": len(result.history),
            "val_acc": result.final["val_acc"], "best_val_acc": result.final["best_val_acc"],
            "params": result.final["params"], "train_time_s": result.final["train_time_s"]}


def gather_or_cancel(refs: list[Any]) -> list[Any]:
    """Every task's result; when one fails (or the user interrupts), cancel the others first.

    ``ray.get`` of a list raises at the first failure and leaves the other tasks training on,
    for nothing, holding the CPUs and GPUs the sweep's trials need next.
    """
    import ray

    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)  # raises the finished task's error
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return ray.get(refs)


def run_pretrain_stage(jobs: list[PretrainJob], data: Any, cpus: float, gpus: float, console: Any) -> list[dict]:
    """Train the jobs whose weights do not exist yet, in parallel; return what every job trained to."""
    import ray

    todo = [job for job in jobs if not os.path.isfile(job.path)]
    if not jobs:
        return []
    console.print(f"pretrain stage: {len(jobs)} network(s), {len(todo)} to train "
                  f"({len(jobs) - len(todo)} already there)")
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(_train_one)
    data_ref = ray.put(data) if data is not None and todo else None
    try:
        results = gather_or_cancel([task.remote(job.config, job.path, data_ref) for job in todo])
    except ray.exceptions.RayTaskError as exc:  # one line, with the task's own reason
        cause = exc.cause if exc.cause is not None else exc
        raise ConfigError("pretrain", type(cause).__name__, " ".join(str(cause).split())[:300]) from None
    for row in results:
        console.print(f"  pretrained {row['key']}: val_acc {row['val_acc']:.4f} after {row['epochs']} epochs "
                      f"({row['train_time_s']:.0f} s)")
    return results


def stage_record(jobs: list[PretrainJob], results: list[dict]) -> str:
    """JSON of the stage for the parent run: every job's config and, where trained now, its metrics."""
    trained = {row["key"]: row for row in results}
    return json.dumps([{"key": j.key, "path": j.path, "config": j.config, **trained.get(j.key, {})} for j in jobs],
                      indent=1, default=str)
