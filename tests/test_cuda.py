"""The CUDA branches of the training loop (issue 10): mixed precision, GradScaler, channels_last,
torch.compile, exact resume with the scaler's state, data resident on (or streamed to) the GPU.

Marked ``cuda`` and skipped only where no CUDA device exists; ``bench/gpu_check.sh`` runs them
(``pytest -m cuda tests/test_cuda.py``) together with the GPU benchmarks.

Comparisons, and why:

- resume (fp16 + GradScaler): the scaler's state must be *equal* (its scale moves by powers of
  two on discrete overflow events, its growth tracker counts steps: nothing to round), and the
  weights *bit-identical*: with cuDNN's deterministic algorithms (benchmark off) and a fixed
  cuBLAS workspace (``CUBLAS_WORKSPACE_CONFIG``), the same kernels see the same inputs in the
  same order, as on the CPU, where ``tests/test_training.py`` holds the same bar.
- channels_last vs contiguous, and compiled vs eager: the same arithmetic with other kernels
  and reduction orders, in float32 with TF32 off: ~1e-6 relative per layer; ``atol = rtol =
  1e-3`` on logits of order 1 leaves room for that over the network's depth while a layout or
  graph bug (channels mixed up, a mode lost) is off by O(1).
"""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch

# Deterministic cuBLAS needs this before CUDA is initialised (gpu_check.sh exports it too).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

from resnetx import build_model
from sweep.config.experiment import ExperimentConfig
from sweep.data.load import load_dataset
from sweep.data.stream import PATH_RESIDENT, PATH_STREAM
from sweep.training.checkpoint import CHECKPOINT_FILE
from sweep.training.loop import _Loop, data_plan, train

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SMALL_MODEL = {"num_nodes": [1, 1], "unit": "basic", "stem": "cifar", "stem_width": 16, "base": 16,
               "bottle_scale": 1.0}
TOL = {"atol": 1e-3, "rtol": 1e-3}


def small(data=None, **train) -> ExperimentConfig:
    return ExperimentConfig(model=SMALL_MODEL, data={"subset": 1024, "image_size": 16, **(data or {})},
                            train={"epochs": 3, "batch_size": 32, "lr": 0.1, "warmup_epochs": 0.5, "device": "cuda",
                                   "seed": 3, "amp": True, **train})


@pytest.fixture(scope="module")
def digits():
    return load_dataset(small().data)


@pytest.fixture
def deterministic():
    """cuDNN's deterministic kernels, no autotuning, no TF32 (restored after the test).

    Saved and restored by hand: ``torch.backends.cuda.matmul`` answers through ``__getattr__``,
    which pytest's monkeypatch cannot undo.
    """
    flags = [(torch.backends.cudnn, "deterministic", True), (torch.backends.cudnn, "benchmark", False),
             (torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in flags]
    for obj, name, value in flags:
        setattr(obj, name, value)
    yield
    for obj, name, value in saved:
        setattr(obj, name, value)


@pytest.fixture
def fp16_only(monkeypatch):
    """A GPU without bfloat16 as the loop sees it: amp then means float16 with a GradScaler."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)


def _learns(result) -> None:
    losses = [h["train_loss"] for h in result.history]
    assert result.status == "finished" and all(math.isfinite(v) for v in losses), losses
    assert losses[-1] < losses[0], losses
    assert all(math.isfinite(h["val_loss"]) for h in result.history)
    assert result.history[-1]["val_acc"] > 0.5  # chance is 0.1


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(), reason="no bfloat16 here")
def test_bf16_autocast_trains_without_a_scaler(digits):
    loop = _Loop(small(), digits, torch.device("cuda"))
    assert loop.amp == torch.bfloat16 and loop.scaler is None
    result = train(small(), data=digits, measure_latency=False)
    assert result.info["amp"] == "bfloat16" and result.info["device"] == "cuda"
    _learns(result)


def test_fp16_autocast_trains_with_a_grad_scaler(digits, fp16_only):
    loop = _Loop(small(), digits, torch.device("cuda"))
    assert loop.amp == torch.float16 and isinstance(loop.scaler, torch.amp.GradScaler)
    result = train(small(), data=digits, measure_latency=False)
    assert result.info["amp"] == "float16"
    _learns(result)


def test_amp_off_trains_in_float32(digits):
    loop = _Loop(small(amp=False), digits, torch.device("cuda"))
    assert loop.amp is None and loop.scaler is None
    _learns(train(small(amp=False), data=digits, measure_latency=False))


class _Stop(Exception):
    pass


def _stop_after_one(metrics, _):
    if metrics["epoch"] == 1:
        raise _Stop  # a killed trial: the checkpoint of epoch 1 is already on disk


def test_fp16_resume_restores_the_scaler_exactly(digits, fp16_only, deterministic, tmp_path):
    """2 epochs straight == 1 epoch, killed, + resume for the 2nd: scaler state equal, weights bit-identical."""
    cfg = small(epochs=2)
    straight = train(cfg, data=digits, checkpoint_dir=tmp_path / "straight", measure_latency=False)
    with pytest.raises(_Stop):
        train(cfg, data=digits, on_epoch=_stop_after_one, checkpoint_dir=tmp_path / "half", measure_latency=False)
    saved = torch.load(tmp_path / "half" / CHECKPOINT_FILE, weights_only=True)
    assert saved["epoch"] == 1 and saved["scaler"]
    assert saved["scaler"] != torch.amp.GradScaler("cuda").state_dict()  # it moved: restoring it matters
    resumed = train(cfg, data=digits, checkpoint_dir=tmp_path / "half", resume_from=tmp_path / "half",
                    measure_latency=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a = torch.load(tmp_path / "straight" / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(tmp_path / "half" / CHECKPOINT_FILE, weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    assert a["scaler"] == b["scaler"]
    assert a["rng"]["generator"].equal(b["rng"]["generator"])  # the device generator went on where it stopped
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]


def test_channels_last_matches_contiguous(digits, deterministic):
    torch.manual_seed(0)
    model = build_model(small().model).cuda().eval()
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.randn(32, 1, 16, 16, device="cuda")
    with torch.no_grad():
        expected = model(x)
        got = last(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, **TOL)
    loop = _Loop(small(channels_last=True), digits, torch.device("cuda"))
    conv = next(m for m in loop.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert loop._input(loop.train_x[:4]).is_contiguous(memory_format=torch.channels_last)
    _learns(train(small(channels_last=True), data=digits, measure_latency=False))


@pytest.mark.timeout(300)
def test_compiled_forward_matches_eager_and_trains(digits, deterministic):
    torch.manual_seed(0)
    model = build_model(small().model).cuda().eval()
    compiled = torch.compile(model)
    x = torch.randn(32, 1, 16, 16, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), **TOL)
    result = train(small(compile=True, epochs=2, amp=False), data=digits, measure_latency=False)
    assert result.status == "finished" and all(math.isfinite(h["train_loss"]) for h in result.history)


def test_resident_data_lives_on_the_gpu_and_the_test_split_only_when_evaluated(digits):
    plan = data_plan(small(), digits)
    assert plan.path == PATH_RESIDENT and plan.limit_mb is not None and plan.limit_mb > plan.resident_mb
    loop = _Loop(small(evaluate_test=True), digits, torch.device("cuda"))
    assert loop.train_x is not None and loop.val_y is not None
    assert {t.device.type for t in (loop.train_x, loop.train_y, loop.val_x, loop.val_y)} == {"cuda"}
    assert loop.test_x is None and loop.stream is None
    before = torch.cuda.memory_allocated()
    loop.evaluate_test()
    assert loop.test_x is None and torch.cuda.memory_allocated() <= before  # moved, evaluated, freed


def test_streaming_to_the_gpu_pins_batches_and_trains(digits):
    cfg = small(data={"loader": "stream", "workers": 2}, epochs=3)
    loop = _Loop(cfg, digits, torch.device("cuda"))
    assert loop.train_x is None and loop.stream is not None and loop.stream.train.pin_memory
    x, _ = next(iter(loop.stream.train_batches(1)))
    assert x.is_pinned() and x.dtype == torch.uint8 and x.device.type == "cpu"
    result = train(cfg, data=digits, measure_latency=False)
    assert result.info["data_path"] == PATH_STREAM
    _learns(result)


def test_auto_streams_when_the_limit_is_below_the_data(digits):
    cfg = small(data={"resident_limit_mb": 0.01})
    plan = data_plan(cfg, digits)
    assert plan.path == PATH_STREAM and plan.resident_mb > 0.01
