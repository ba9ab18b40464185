"""Trials sharing one GPU (issue 22): resident data within each trial's share, and a resident plan
that runs out of memory on its way to the device streams instead of failing.

No GPU is needed: the device's memory is read through ``choose_path``'s memory query, here a
simulated device that the "moves" of the trials fill (torch itself is not mocked), and the
fallback is driven through ``move_resident`` and a real CPU training.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import sweep.data.stream as stream_module
import sweep.training.loop as loop_module
from sweep.config.experiment import DataConfig, ExperimentConfig
from sweep.data.load import DatasetBundle, load_dataset
from sweep.data.stream import MIB, PATH_RESIDENT, PATH_STREAM, choose_path, move_resident, resident_bytes
from sweep.training.loop import data_plan, train
from sweep.tune.trainable import gpu_share

GIB = 2**30
CUDA = torch.device("cuda")  # a device object only: nothing is allocated on it


class SimulatedGPU:
    """One device several trials share: its total memory and what the trials moved onto it."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0

    def memory(self, device: torch.device) -> tuple[int, int]:
        assert device.type == "cuda"
        return self.total - self.used, self.total

    def move(self, array: np.ndarray) -> torch.Tensor:
        """A copy onto the device: fails as CUDA does when it does not fit."""
        if self.used + array.nbytes > self.total:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {array.nbytes / MIB:.0f} MiB")
        self.used += array.nbytes
        return torch.empty(0)


def bundle_of(nbytes: int) -> DatasetBundle:
    """A bundle whose train + val splits hold ``nbytes`` (views of one byte: no memory is used)."""
    n = nbytes // (16 * 16)
    n_train, n_val = n * 9 // 10, n - n * 9 // 10
    image = np.zeros(1, np.uint8)

    def images(count: int) -> np.ndarray:
        return np.broadcast_to(image, (count, 1, 16, 16))

    labels = np.zeros(0, np.int64)  # no labels: the sizes stay exactly the images'
    return DatasetBundle("sim", images(n_train), labels, images(n_val), labels, images(0), labels, 10, 1, 16,
                         (0.5,), (0.25,), False)


def trial(gpu: SimulatedGPU, data: DatasetBundle, share: float) -> str:
    """One trial's decision on the shared device, then its move if resident: the path it trains on."""
    plan = choose_path(DataConfig(), data, CUDA, evaluate_test=False, gpu_share=share, memory=gpu.memory)
    if plan.path == PATH_RESIDENT:
        _, plan = move_resident(plan, (data.train_x, data.train_y, data.val_x, data.val_y), gpu.move, CUDA)
    return plan.path


def test_two_trials_at_half_a_gpu_keep_to_their_halves():
    big, small = bundle_of(int(0.7 * GIB)), bundle_of(int(0.4 * GIB))
    assert resident_bytes(big, False) == pytest.approx(0.7 * GIB, abs=256)

    gpu = SimulatedGPU(GIB)  # 0.7 GiB fits in what is free (1 GiB) but not in a half share: both stream
    assert [trial(gpu, big, 0.5), trial(gpu, big, 0.5)] == [PATH_STREAM, PATH_STREAM]
    assert gpu.used == 0

    gpu = SimulatedGPU(GIB)  # 0.4 GiB each: both resident, and both fit
    assert [trial(gpu, small, 0.5), trial(gpu, small, 0.5)] == [PATH_RESIDENT, PATH_RESIDENT]
    assert gpu.used == 2 * resident_bytes(small, False) <= gpu.total


def test_trials_deciding_at_once_cannot_all_claim_the_free_memory():
    """Four trials at 0.25 decide before any has moved its data (the race of issue 22): 0.3 of
    the device each is under half the free memory, but over a quarter share, so none goes resident."""
    gpu = SimulatedGPU(GIB)
    data = bundle_of(int(0.3 * GIB))
    plans = [choose_path(DataConfig(), data, CUDA, False, gpu_share=0.25, memory=gpu.memory) for _ in range(4)]
    assert [p.path for p in plans] == [PATH_STREAM] * 4
    assert "0.25 of 1024 MiB" in plans[0].reason
    data = bundle_of(int(0.2 * GIB))  # 0.2 each fits a quarter less its margin: all four resident, all fit
    plans = [choose_path(DataConfig(), data, CUDA, False, gpu_share=0.25, memory=gpu.memory) for _ in range(4)]
    assert [p.path for p in plans] == [PATH_RESIDENT] * 4
    for plan in plans:
        moved, after = move_resident(plan, (data.train_x, data.val_x), gpu.move, CUDA)
        assert moved is not None and after.path == PATH_RESIDENT
    assert gpu.used <= gpu.total


def test_what_is_free_now_still_bounds_the_share():
    gpu = SimulatedGPU(GIB)
    gpu.used = int(0.8 * GIB)  # another process holds most of the device
    assert trial(gpu, bundle_of(int(0.4 * GIB)), 0.5) == PATH_STREAM
    assert trial(gpu, bundle_of(int(0.1 * GIB)), 0.5) == PATH_RESIDENT


def test_a_resident_plan_that_runs_out_of_memory_on_the_way_streams(caplog):
    gpu = SimulatedGPU(GIB)
    data = bundle_of(int(0.4 * GIB))
    plan = choose_path(DataConfig(workers=2), data, CUDA, False, gpu_share=0.5, memory=gpu.memory)
    assert plan.path == PATH_RESIDENT
    gpu.used = int(0.7 * GIB)  # taken by someone else between the decision and the move
    with caplog.at_level(logging.WARNING, logger="sweep.data.stream"):
        moved, after = move_resident(plan, (data.train_x, data.train_y, data.val_x, data.val_y), gpu.move, CUDA,
                                     workers=2)
    assert moved is None and after.path == PATH_STREAM and after.workers == 2
    assert after.reason.startswith("stream: out of cuda memory moving") and "CUDA out of memory" in after.reason
    assert [r.getMessage() for r in caplog.records] == [f"data: {after.reason}"]  # one line


def _tiny_config(**data) -> ExperimentConfig:
    return ExperimentConfig(model={"num_nodes": [1, 1], "unit": "basic", "stem": "cifar", "stem_width": 8,
                                   "base": 8, "in_channels": 1},
                            data={"subset": 200, "image_size": 8, "workers": 0, **data},
                            train={"epochs": 1, "batch_size": 32, "device": "cpu", "seed": 0, "evaluate_test": True})


@pytest.fixture(scope="module")
def digits():
    return load_dataset(_tiny_config().data)


def test_training_continues_streamed_when_the_resident_move_runs_out_of_memory(digits, monkeypatch):
    """The real loop: its copy of the training split fails as CUDA's would; it trains streamed."""
    original = loop_module._device_tensor

    def out_of_memory_on_train_x(array, device):
        if array is digits.train_x or array is digits.test_x:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(array, device)

    monkeypatch.setattr(loop_module, "_device_tensor", out_of_memory_on_train_x)
    cfg = _tiny_config(loader="resident")
    result = train(cfg, data=digits, measure_latency=False)
    assert result.status == "finished" and result.info["data_path"] == PATH_STREAM
    assert "out of cpu memory" in result.info["data_plan"] and 0.0 <= result.final["test_acc"] <= 1.0


def test_the_trials_share_reaches_the_plan(digits, monkeypatch):
    """What the trainable passes (Ray's assigned GPUs) is what ``data_plan`` bounds residency by."""
    assert (gpu_share(0.25), gpu_share(1.0), gpu_share(2.0), gpu_share(0.0)) == (0.25, 1.0, 1.0, 1.0)
    need = resident_bytes(digits, True)
    gpu = SimulatedGPU(int(need / 0.45))  # the data is 0.45 of the device
    monkeypatch.setattr(stream_module, "device_memory", gpu.memory)
    cfg = _tiny_config()
    assert data_plan(cfg, digits, CUDA, gpu_share=gpu_share(1.0)).path == PATH_RESIDENT
    assert data_plan(cfg, digits, CUDA, gpu_share=gpu_share(0.25)).path == PATH_STREAM
