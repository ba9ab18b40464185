"""The IDX reader (MNIST, Fashion-MNIST) against the files themselves.

Expected values come from the files, decoded here independently of the reader: the header is
parsed with ``int.from_bytes`` byte by byte and pixels are taken from the raw byte offsets.
Fashion-MNIST is Debian's ``dataset-fashion-mnist`` (``make test`` installs it when missing).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from resnetx.errors import ConfigError
from sweep.config.experiment import DataConfig
from sweep.data.load import load_dataset
from sweep.data.sources.idx import read_idx_dataset

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def raw_bytes(name: str) -> bytes:
    return gzip.decompress((DEBIAN / f"{name}.gz").read_bytes())


def big_endian(blob: bytes, offset: int) -> int:
    return int.from_bytes(blob[offset:offset + 4], "big")


def test_the_debian_package_is_installed():
    assert all((DEBIAN / f"{name}.gz").is_file() for name in FILES), \
        "Debian's dataset-fashion-mnist is missing: make test installs it (apt-get install dataset-fashion-mnist)"


def test_headers_counts_sizes_and_labels():
    train_images, test_images = raw_bytes(FILES[0]), raw_bytes(FILES[2])
    assert [big_endian(train_images, o) for o in (0, 4, 8, 12)] == [0x803, 60000, 28, 28]
    assert [big_endian(test_images, o) for o in (0, 4, 8, 12)] == [0x803, 10000, 28, 28]
    raw = read_idx_dataset("fashion_mnist", Path("/nonexistent"), download=False)  # found by itself
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert raw.train_x.dtype == np.uint8 and raw.train_y.dtype == np.int64
    assert set(np.unique(raw.train_y)) == set(range(10)) and set(np.unique(raw.test_y)) == set(range(10))
    assert np.bincount(raw.train_y).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert raw.class_names[0] == "T-shirt/top" and raw.class_names[9] == "Ankle boot"


def test_first_images_and_labels_equal_an_independent_decoding():
    raw = read_idx_dataset("fashion_mnist", Path("/nonexistent"), download=False)
    images, labels = raw_bytes(FILES[0]), raw_bytes(FILES[1])
    t_images, t_labels = raw_bytes(FILES[2]), raw_bytes(FILES[3])
    for i in range(5):
        pixels = images[16 + i * 784: 16 + (i + 1) * 784]
        assert raw.train_x[i, 0].reshape(-1).tolist() == list(pixels)
        assert raw.train_y[i] == labels[8 + i]
        assert raw.test_x[-1 - i, 0].reshape(-1).tolist() == list(t_images[16 + (9999 - i) * 784:
                                                                          16 + (10000 - i) * 784])
        assert raw.test_y[-1 - i] == t_labels[8 + 9999 - i]
    assert raw.train_y[:10].tolist() == list(labels[8:18])  # 9, 0, 0, 3, ... from the file itself


def test_flat_plain_files_and_torchvision_layout_are_read(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in FILES:  # un-gzipped, flat
        (flat / name).write_bytes(raw_bytes(name))
    tv = tmp_path / "tv" / "FashionMNIST" / "raw"
    tv.mkdir(parents=True)
    for name in FILES:
        shutil.copy(DEBIAN / f"{name}.gz", tv / f"{name}.gz")
    reference = read_idx_dataset("fashion_mnist", Path("/nonexistent"), download=False)
    for root in (flat, tmp_path / "tv"):
        raw = read_idx_dataset("fashion_mnist", root, download=False)
        assert np.array_equal(raw.train_x[:100], reference.train_x[:100])
        assert np.array_equal(raw.test_y, reference.test_y)


def test_a_corrupt_file_is_one_line(tmp_path):
    for name in FILES:
        (tmp_path / name).write_bytes(raw_bytes(name))
    (tmp_path / FILES[1]).write_bytes(raw_bytes(FILES[1])[:-10])  # 10 labels short
    with pytest.raises(ConfigError, match=r"holds 59990 values; its header says \[60000\]"):
        read_idx_dataset("fashion_mnist", tmp_path, download=False)


def test_a_missing_data_set_names_the_package_and_data_root(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_idx_dataset("mnist", tmp_path, download=False)
    text = str(info.value)
    assert "\n" not in text and "data.root" in text and "data.download=true" in text
    import sweep.data.sources.idx as idx

    dataset = idx.IDX_DATASETS["fashion_mnist"]
    missing = idx.IdxDataset(dataset.name, dataset.torchvision_name, tmp_path / "absent", dataset.debian_package,
                             dataset.classes)
    assert "apt-get install dataset-fashion-mnist" in idx.missing_message(missing, tmp_path)


def test_load_dataset_without_a_root_splits_subsets_and_resizes():
    bundle = load_dataset(DataConfig(name="fashion_mnist", subset=2000, val_fraction=0.1, image_size=16))
    assert bundle.summary() == "fashion_mnist: 2000 train / 6000 val / 10000 test, 10 classes, 1x16x16"
    assert bundle.hflip  # clothes stay clothes when mirrored
