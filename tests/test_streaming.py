"""Data that does not fit on the device (issue 14): the streaming path, the choice, the test split.

The image folder is written by the test as PNG files: four classes of 16x16 RGB images told
apart only by their pattern (horizontal stripes, vertical stripes, checkerboard, flat), each
with a random colour, stripe period and phase and strong pixel noise. Crops and horizontal
flips keep every label, colour says nothing about the class, and chance is 25%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sweep.training.loop as loop_module
from resnetx.errors import ConfigError
from sweep.config.experiment import ExperimentConfig
from sweep.data.augment import BatchAugment, default_padding
from sweep.data.load import load_dataset
from sweep.data.stream import (
    _AUGMENT,
    MIB,
    PATH_RESIDENT,
    PATH_STREAM,
    ArrayBatches,
    BatchKey,
    EpochBatches,
    _seed,
    choose_path,
    resident_bytes,
)
from sweep.training.checkpoint import CHECKPOINT_FILE
from sweep.training.loop import _Loop, data_plan, train

SIZE, PER_CLASS, CLASSES = 16, 96, 4
MODEL = {"num_nodes": [1, 1], "unit": "basic", "stem": "cifar", "stem_width": 8, "base": 8, "bottle_scale": 1.0}
# Below the folder's resident size (train + val = 0.43 MiB; + test = 0.57 MiB), so auto streams.
LIMIT_MB = 0.25


def _pattern(cls: int, rng: np.random.Generator) -> np.ndarray:
    period = int(rng.integers(3, 6))
    phase = int(rng.integers(0, period))
    half = max(1, period // 2)
    rows = ((np.arange(SIZE)[:, None] + phase) // half % 2) * np.ones((1, SIZE))
    cols = ((np.arange(SIZE)[None, :] + phase) // half % 2) * np.ones((SIZE, 1))
    mask = [rows, cols, (rows + cols) % 2, np.full((SIZE, SIZE), 0.5)][cls]
    image = rng.uniform(60, 200, 3) + (mask[..., None] - 0.5) * 120 + rng.normal(0, 40, (SIZE, SIZE, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", PER_CLASS), ("val", PER_CLASS // 2), ("test", PER_CLASS // 2)):
        for cls in range(CLASSES):
            target = root / split / f"class{cls}"
            target.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_pattern(cls, rng)).save(target / f"{i:03d}.png")
    return root


def config(folder, data=None, **train) -> ExperimentConfig:
    return ExperimentConfig(
        model=MODEL,
        data={"name": "imagefolder", "root": str(folder), "image_size": SIZE, "workers": 0, **(data or {})},
        train={"epochs": 4, "batch_size": 32, "lr": 0.05, "warmup_epochs": 0.5, "device": "cpu", "seed": 0,
               **train})


@pytest.fixture(scope="module")
def bundle(folder):
    return load_dataset(config(folder).data)


def test_the_folder_is_larger_than_the_limit(bundle):
    assert (len(bundle.train_y), len(bundle.val_y), len(bundle.test_y)) == (384, 192, 192)
    assert bundle.num_classes == CLASSES and bundle.input_shape == (3, SIZE, SIZE)
    assert resident_bytes(bundle, evaluate_test=False) > LIMIT_MB * MIB


def test_streaming_trains_with_the_resident_trend(folder, bundle):
    """Both paths learn the patterns alike, and the choice is in the result's info.

    Tolerances: the two paths draw different random numbers (the resident path one device
    generator, the stream per-batch seeds), so they differ as two seeds of one path do, never bit
    for bit. Measured here over seeds 0-5 of both paths (12 runs of this test's config): the
    final (5th-epoch) accuracy was 0.995-1.0 in every run, so finals must agree within 0.05
    (about 3.5 binomial standard deviations of a difference on 192 images at 98%); the mean over
    the 5 epochs (the curve) ranged 0.75-0.87 across seeds, so curves must agree within 0.15.
    A broken stream (labels not following their images, no normalisation) stays near chance.
    """
    streamed = train(config(folder, {"resident_limit_mb": LIMIT_MB, "workers": 1}, epochs=5), data=bundle,
                     measure_latency=False)
    resident = train(config(folder, epochs=5), data=bundle, measure_latency=False)
    assert streamed.info["data_path"] == PATH_STREAM and resident.info["data_path"] == PATH_RESIDENT
    assert streamed.info["data_plan"].startswith("stream: 0.426 MiB > 0.25 MiB (data.resident_limit_mb)")
    assert streamed.info["data_workers"] == 1 and resident.info["data_workers"] == 0
    curves = []
    for result in (streamed, resident):
        accs = [h["val_acc"] for h in result.history]
        assert result.status == "finished" and len(accs) == 5
        assert accs[-1] >= 0.9 and accs[-1] > accs[0] + 0.3, accs  # chance is 0.25
        assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
        curves.append(accs)
    assert abs(curves[0][-1] - curves[1][-1]) <= 0.05, curves
    assert abs(sum(curves[0]) / 5 - sum(curves[1]) / 5) <= 0.15, curves


def test_the_choice_follows_the_limit_and_the_override(folder, bundle):
    cpu = torch.device("cpu")
    plan = lambda **data: choose_path(config(folder, data).data, bundle, cpu, evaluate_test=False)  # noqa: E731
    assert plan().path == PATH_RESIDENT  # CPU, no limit: residency shares the host arrays
    assert plan(resident_limit_mb=LIMIT_MB).path == PATH_STREAM
    assert plan(resident_limit_mb=10).path == PATH_RESIDENT
    assert plan(loader="stream").path == PATH_STREAM
    assert plan(loader="resident", resident_limit_mb=LIMIT_MB).path == PATH_RESIDENT  # forced
    assert plan(loader="stream", workers=3).workers == 3 and plan(resident_limit_mb=10).workers == 0
    # The test split counts only when it is evaluated: 0.5 MiB lies between 0.43 and 0.57.
    cfg = config(folder, {"resident_limit_mb": 0.5})
    assert data_plan(cfg, bundle).path == PATH_RESIDENT
    assert data_plan(cfg.replace(train={**cfg.train.to_dict(), "evaluate_test": True}), bundle).path == PATH_STREAM


@pytest.mark.parametrize(("field", "value", "message"), [
    ("loader", "disk", "data.loader: got 'disk'; must be one of auto, resident, stream"),
    ("resident_limit_mb", 0, "data.resident_limit_mb: got 0; must be > 0 MiB"),
    ("resident_limit_mb", -1, "data.resident_limit_mb: got -1; must be > 0 MiB"),
    ("resident_limit_mb", True, "data.resident_limit_mb: got True; must be a number"),
    ("workers", -1, "data.workers: got -1; must be >= 0"),
])
def test_bad_loader_settings_are_one_line_errors(field, value, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(model=MODEL, data={field: value})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_loader_settings_do_not_change_the_config_hash():
    base = ExperimentConfig(model=MODEL)
    for data in ({"loader": "stream"}, {"resident_limit_mb": 64}, {"workers": 2}, {"resident_limit_mb": "1e3"}):
        assert ExperimentConfig(model=MODEL, data=data).config_hash() == base.config_hash()


def _record_moves(monkeypatch):
    """Every whole array the loop copies to the device, in order, with a marker at each epoch end."""
    events: list = []
    original = loop_module._device_tensor

    def recording(array, device):
        events.append(array)
        return original(array, device)

    monkeypatch.setattr(loop_module, "_device_tensor", recording)
    return events, lambda metrics, _: events.append(f"epoch {metrics['epoch']}")


def _moved(events, array) -> bool:
    return any(e is array for e in events)


def test_the_test_split_goes_to_the_device_only_when_evaluated(folder, bundle, monkeypatch):
    events, on_epoch = _record_moves(monkeypatch)
    result = train(config(folder, epochs=1), data=bundle, on_epoch=on_epoch, measure_latency=False)
    assert "test_acc" not in result.final
    assert all(_moved(events, a) for a in (bundle.train_x, bundle.train_y, bundle.val_x, bundle.val_y))
    assert not _moved(events, bundle.test_x) and not _moved(events, bundle.test_y)

    events.clear()
    result = train(config(folder, epochs=2, evaluate_test=True), data=bundle, on_epoch=on_epoch,
                   measure_latency=False)
    assert 0.0 <= result.final["test_acc"] <= 1.0
    assert _moved(events, bundle.test_x)
    # not while training: only after the last epoch trained (it is reported with that epoch)
    first_epoch = next(i for i, e in enumerate(events) if isinstance(e, str) and e == "epoch 1")
    last_epoch = next(i for i, e in enumerate(events) if isinstance(e, str) and e == "epoch 2")
    assert not _moved(events[:first_epoch], bundle.test_x)
    assert _moved(events[first_epoch:last_epoch], bundle.test_x)

    loop = _Loop(config(folder, evaluate_test=True), bundle, torch.device("cpu"))
    assert loop.test_x is None and loop.test_y is None and loop.train_x is not None
    loop.evaluate_test()
    assert loop.test_x is None  # dropped again after its one evaluation


def test_streaming_never_puts_a_whole_split_on_the_device(folder, bundle, monkeypatch):
    events, on_epoch = _record_moves(monkeypatch)
    result = train(config(folder, {"loader": "stream"}, epochs=1, evaluate_test=True), data=bundle,
                   on_epoch=on_epoch, measure_latency=False)
    assert result.info["data_path"] == PATH_STREAM and "test_acc" in result.final
    assert not [e for e in events if not isinstance(e, str)]  # only batches travelled
    loop = _Loop(config(folder, {"loader": "stream"}), bundle, torch.device("cpu"))
    assert loop.train_x is None and loop.val_x is None and loop.stream is not None
    x, y = next(iter(loop.stream.train_batches(1)))
    assert x.dtype == torch.uint8 and tuple(x.shape) == (32, 3, SIZE, SIZE) and len(y) == 32


def test_streamed_batches_are_the_resident_augmentation_of_their_images(bundle):
    """Same crop (zero padding), flip and order rule; batches depend on (seed, epoch, batch) only."""
    augment = BatchAugment(default_padding(SIZE), flip=True)
    dataset = ArrayBatches(bundle.train_x, bundle.train_y, augment, seed=5)
    sampler = EpochBatches(len(bundle.train_y), 32, 12, seed=5, shuffle=True)
    sampler.epoch = 3
    keys = list(sampler)
    order = np.concatenate([k.indices for k in keys])
    assert sorted(order.tolist()) == list(range(len(bundle.train_y)))  # a permutation, every image once
    x, y = dataset[keys[2]]
    expected = augment(torch.from_numpy(bundle.train_x[keys[2].indices]),
                       torch.Generator().manual_seed(_seed(5, _AUGMENT, 3, 2)))
    assert torch.equal(x, expected) and torch.equal(y, torch.from_numpy(bundle.train_y[keys[2].indices]))
    assert not torch.equal(x, torch.from_numpy(bundle.train_x[keys[2].indices]))  # it was augmented
    white = ArrayBatches(np.full((64, 3, SIZE, SIZE), 255, np.uint8), np.zeros(64, np.int64), augment, seed=0)
    batch, _ = white[BatchKey(1, 0, np.arange(64))]
    assert (batch == 0).any() and (batch == 255).any()  # zero padding shows where a crop shifted
    again = ArrayBatches(bundle.train_x, bundle.train_y, augment, seed=5)[keys[2]][0]
    assert torch.equal(again, x)  # the same in any process: no state carried between batches
    sampler.epoch = 4
    assert not np.array_equal(np.concatenate([k.indices for k in sampler]), order)


def test_streaming_is_the_same_with_and_without_workers_and_resumes_at_epoch_ends(folder, bundle, tmp_path):
    cfg = config(folder, {"loader": "stream", "workers": 0}, epochs=3)
    straight = train(cfg, data=bundle, checkpoint_dir=tmp_path / "straight", measure_latency=False)
    with_workers = train(config(folder, {"loader": "stream", "workers": 1}, epochs=3), data=bundle,
                         measure_latency=False)
    assert [h["train_loss"] for h in with_workers.history] == [h["train_loss"] for h in straight.history]

    class Stop(Exception):
        pass

    def crash_after_two(metrics, _):
        if metrics["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, data=bundle, on_epoch=crash_after_two, checkpoint_dir=tmp_path / "half", measure_latency=False)
    resumed = train(cfg, data=bundle, checkpoint_dir=tmp_path / "half", resume_from=tmp_path / "half",
                    measure_latency=False)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    a = torch.load(tmp_path / "straight" / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(tmp_path / "half" / CHECKPOINT_FILE, weights_only=True)
    assert a["data_path"] == b["data_path"] == PATH_STREAM
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert all(math.isfinite(h["val_loss"]) for h in resumed.history)
