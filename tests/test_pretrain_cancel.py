"""The pretrain stage cancels its other tasks when one fails (real Ray, local runtime).

``ray.get`` of a list raised at the first failed network and left the others training, holding
the CPUs the sweep's trials needed next (review of 7bd5730, sweep/tune/pretrain.py:127).
"""

from __future__ import annotations

import time

import pytest
import ray

from sweep.tune.pretrain import gather_or_cancel


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@ray.remote(num_cpus=1, max_retries=0)
def _fail_soon() -> None:
    time.sleep(0.5)
    raise RuntimeError("diverged")


@ray.remote(num_cpus=1, max_retries=0)
def _train_long() -> str:
    time.sleep(120)
    return "trained"


def test_a_failed_task_cancels_the_ones_still_training(local_ray):
    slow = _train_long.remote()
    started = time.monotonic()
    with pytest.raises(ray.exceptions.RayTaskError, match="diverged"):
        gather_or_cancel([slow, _fail_soon.remote()])
    assert time.monotonic() - started < 60  # did not wait for the long one
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(slow, timeout=30)  # cancelled, not still running


def test_results_come_back_in_order_when_all_succeed(local_ray):
    @ray.remote(num_cpus=0.5)
    def square(x: int) -> int:
        time.sleep(0.3 * (3 - x))  # finish in reverse order
        return x * x

    assert gather_or_cancel([square.remote(i) for i in range(3)]) == [0, 1, 4]


def test_the_stage_trains_a_network_and_writes_its_weights(local_ray, tmp_path):
    """The stage's task end to end (real Ray, real training on digits): weights that load into the network."""
    import torch
    from rich.console import Console

    from resnetx import build_model
    from sweep.config.experiment import ExperimentConfig
    from sweep.tune.pretrain import PretrainJob, run_pretrain_stage

    config = {"model": {"num_nodes": [1, 1, 1], "fold": 1, "start_id": 2, "end_id": 3, "base": 8, "stem_width": 8},
              "data": {"name": "digits", "subset": 300}, "train": {"epochs": 1, "seed": 3}}
    job = PretrainJob("net", config, str(tmp_path / "net.pt"))
    (row,) = run_pretrain_stage([job], data=None, cpus=1, gpus=0, console=Console(quiet=True))
    assert row["key"] == "net" and row["epochs"] == 1 and 0.0 <= row["val_acc"] <= 1.0
    model = build_model(ExperimentConfig(**config).model)
    model.load_state_dict(torch.load(job.path, weights_only=True))  # every tensor fits the network
    assert row["params"] == sum(p.numel() for p in model.parameters())
