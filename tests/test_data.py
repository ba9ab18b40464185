"""Datasets: registry metadata, deterministic splits, the CIFAR pickle layout, image folders, augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from resnetx.errors import ConfigError
from sweep.config.datasets import DATASETS, dataset_meta
from sweep.config.experiment import DataConfig, ExperimentConfig
from sweep.data.augment import BatchAugment, normalizer, to_input
from sweep.data.load import load_dataset


def test_registry_metadata_needs_no_data():
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "imagefolder"}
    assert (DATASETS["digits"].num_classes, DATASETS["digits"].in_channels) == (10, 1)
    assert (DATASETS["cifar100"].num_classes, DATASETS["cifar100"].image_size) == (100, 32)
    assert DATASETS["cifar10"].hflip and not DATASETS["svhn"].hflip and not DATASETS["digits"].hflip
    with pytest.raises(ConfigError, match=r"data\.name"):
        dataset_meta("imagenet")


def test_digits_split_is_deterministic_stratified_and_disjoint():
    a = load_dataset(DataConfig(split_seed=0))
    b = load_dataset(DataConfig(split_seed=0))
    c = load_dataset(DataConfig(split_seed=1))
    assert a.train_x.dtype == np.uint8 and a.train_x.shape[1:] == (1, 16, 16) and a.train_y.dtype == np.int64
    assert np.array_equal(a.val_x, b.val_x) and np.array_equal(a.train_y, b.train_y)
    assert not np.array_equal(a.val_x, c.val_x)  # another split seed, another validation set
    assert np.array_equal(a.test_x, c.test_x)  # the test split never moves
    assert len(a.train_y) + len(a.val_y) + len(a.test_y) == 1797
    assert set(np.unique(a.val_y)) == set(range(10))  # every class in validation
    assert abs(len(a.val_y) / (len(a.train_y) + len(a.val_y)) - 0.1) < 0.01
    train_rows = {row.tobytes() for row in a.train_x}
    # Digits has a few duplicate images, so disjointness is checked on positions, via counts.
    assert sum(row.tobytes() in train_rows for row in a.val_x) < 5
    assert 0.0 < a.mean[0] < 1.0 and a.std[0] > 0.0


def test_subset_and_image_size():
    bundle = load_dataset(DataConfig(subset=100, image_size=24))
    assert bundle.train_x.shape == (100, 1, 24, 24)
    assert bundle.val_x.shape[1:] == bundle.test_x.shape[1:] == (1, 24, 24)
    assert bundle.input_shape == (1, 24, 24)


# -- CIFAR python batches, written here (no download) ----------------------------------------
def _write_cifar10(root: Path, per_batch: int = 6) -> np.ndarray:
    """torchvision's CIFAR-10 layout; returns the first training image as (3, 32, 32)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    first = None
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        labels[:2] = [0, 1]
        if first is None:
            first = data[0].reshape(3, 32, 32)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels, "filenames": []}, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch}, f)
    return first


def test_cifar10_from_python_batches(tmp_path):
    first = _write_cifar10(tmp_path)
    cfg = DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.2)
    bundle = load_dataset(cfg)
    assert bundle.train_x.shape[1:] == (3, 32, 32) and bundle.num_classes == 10 and bundle.hflip
    assert len(bundle.train_y) + len(bundle.val_y) == 30 and len(bundle.test_y) == 6
    assert bundle.class_names[:2] == ("airplane", "automobile")
    everything = np.concatenate([bundle.train_x, bundle.val_x])
    assert any(np.array_equal(img, first) for img in everything)  # planes R, G, B of 1024 bytes each
    exp = ExperimentConfig(model={"num_nodes": [1], "stem": "cifar", "unit": "basic"}, data=cfg)
    assert (exp.model.in_channels, exp.model.num_classes) == (3, 10)


def test_cifar100_layout(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 20), ("test", 5)):
        labels = [int(v) for v in rng.integers(0, 100, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": labels,
                         "coarse_labels": [0] * n}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    bundle = load_dataset(DataConfig(name="cifar100", root=str(tmp_path), image_size=16))
    assert bundle.num_classes == 100 and bundle.train_x.shape[1:] == (3, 16, 16) and len(bundle.test_y) == 5


def test_missing_cifar_is_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert message.startswith("data.root:") and "data.download=true" in message and "\n" not in message


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    _write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Evil()}, f)
    with pytest.raises(ConfigError, match=r"refusing to load builtins\.print"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))


# -- image folder ------------------------------------------------------------------------
def _write_images(folder: Path, colour: tuple[int, int, int], count: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (20 + i, 18), colour).save(folder / f"{i}.png")


def test_imagefolder_classes_and_splits(tmp_path):
    _write_images(tmp_path / "train" / "blue", (0, 0, 255), 6)
    _write_images(tmp_path / "train" / "red", (255, 0, 0), 6)
    _write_images(tmp_path / "test" / "red", (255, 0, 0), 2)
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), image_size=8, val_fraction=0.34)
    exp = ExperimentConfig(model={"num_nodes": [1], "stem": "cifar", "unit": "basic"}, data=cfg)
    assert exp.model.num_classes == 2  # counted from train/ without opening an image
    bundle = load_dataset(cfg)
    assert bundle.class_names == ("blue", "red") and bundle.train_x.shape[1:] == (3, 8, 8)
    assert len(bundle.val_y) == 4 and len(bundle.train_y) == 8 and list(bundle.test_y) == [1, 1]
    assert bundle.test_x[:, 0].min() == 255 and bundle.test_x[:, 2].max() == 0  # red stays red
    with pytest.raises(ConfigError, match=r"data\.root"):
        DataConfig(name="imagefolder")
    assert Path(DataConfig(root="some/where").root).is_absolute()  # trials run in a temporary cwd


# -- on-device augmentation --------------------------------------------------------------
def test_crop_is_a_window_of_the_zero_padded_image():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.int64).reshape(2, 3, 5, 5).to(torch.uint8)
    out = BatchAugment(padding=2, flip=False)(x, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    off_y = torch.randint(0, 5, (2, 1), generator=gen)
    off_x = torch.randint(0, 5, (2, 1), generator=gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for b in range(2):
        oy, ox = int(off_y[b]), int(off_x[b])
        assert torch.equal(out[b], padded[b, :, oy:oy + 5, ox:ox + 5])


def test_flip_only_flips_whole_images_and_no_op_is_identity():
    x = torch.randint(0, 255, (64, 1, 6, 6), dtype=torch.uint8)
    out = BatchAugment(padding=0, flip=True)(x, torch.Generator().manual_seed(0))
    flipped = [bool(torch.equal(o, xi.flip(-1))) for o, xi in zip(out, x)]
    kept = [bool(torch.equal(o, xi)) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    assert torch.equal(BatchAugment(0, False)(x, torch.Generator()), x)


def test_normalisation_matches_float_formula():
    x = torch.randint(0, 255, (4, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    shift, scale = normalizer(mean, std, torch.device("cpu"))
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(to_input(x, shift, scale), expected)
    assert to_input(x, shift, scale, channels_last=True).is_contiguous(memory_format=torch.channels_last)
