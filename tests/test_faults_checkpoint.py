"""A full disk under the checkpoint folder, for real: the write fails, the last checkpoint survives.

``sweep.training.checkpoint.save_checkpoint`` writes a temporary file and ``os.replace``-s it, so the
old ``checkpoint.pt`` must stay intact and loadable (``torch.load(weights_only=True)``) when the
new one does not fit, and a real training run that hits the full disk must fail loudly with
``OSError`` (retried by Tune as a transient fault) rather than write a truncated checkpoint.
The disk is a real tmpfs; where the test may not mount one, a file-size limit (RLIMIT_FSIZE,
``EFBIG``) on this process stands in for it.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sweep.config.experiment import ExperimentConfig
from sweep.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from sweep.training.loop import train
from tests.test_faults_common import tiny_filesystem

pytestmark = pytest.mark.faults
FULL = (errno.ENOSPC, errno.EFBIG)


@contextlib.contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """A real ``size_kb`` tmpfs at ``folder``, else a ``size_kb`` file-size limit on this process."""
    with tiny_filesystem(folder, size_kb) as mounted:
        if mounted is not None:
            yield mounted
            return
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_kb * 1024 // 2, hard))  # one file must fit, not two
        try:
            yield folder
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _tensor_state(kb: int, epoch: int) -> dict:
    return {"epoch": epoch, "weights": torch.full((kb * 256,), float(epoch))}


def test_a_write_that_does_not_fit_leaves_the_previous_checkpoint_intact(tmp_path):
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        save_checkpoint(disk, _tensor_state(300, epoch=1))
        before = (disk / CHECKPOINT_FILE).read_bytes()
        with pytest.raises(OSError) as failure:
            save_checkpoint(disk, _tensor_state(900, epoch=2))
        assert failure.value.errno in FULL
        assert (disk / CHECKPOINT_FILE).read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == [CHECKPOINT_FILE]  # no temporary file left
        state = torch.load(disk / CHECKPOINT_FILE, weights_only=True)
        assert state["epoch"] == 1 and torch.equal(state["weights"], torch.full((300 * 256,), 1.0))
        assert load_checkpoint(disk)["epoch"] == 1
        if shutil.disk_usage(disk).total <= 1024 * 1024:  # the tmpfs: the failed write's space is back
            save_checkpoint(disk, _tensor_state(300, epoch=3))
            assert load_checkpoint(disk)["epoch"] == 3


def _tiny_experiment(epochs: int) -> ExperimentConfig:
    return ExperimentConfig(
        model={"stem": "cifar", "unit": "basic", "stem_width": 8, "base": 8, "fold": 1, "num_nodes": [1, 1, 1]},
        data={"name": "digits", "image_size": 16, "subset": 300},
        train={"epochs": epochs, "batch_size": 32, "lr": 0.05, "num_threads": 1})


def test_training_that_fills_the_disk_fails_and_resumes_from_the_last_good_checkpoint(tmp_path):
    cfg = _tiny_experiment(epochs=3)
    probe = tmp_path / "probe"
    train(_tiny_experiment(epochs=1), checkpoint_dir=probe)
    one_checkpoint_kb = (probe / CHECKPOINT_FILE).stat().st_size // 1024
    seen: list[int] = []
    # room for one checkpoint, not for the second one written beside it (the atomic write needs both)
    with tiny_filesystem(tmp_path / "disk", size_kb=int(one_checkpoint_kb * 1.6)) as disk:
        if disk is None:  # a per-file limit cannot fail the second of two equal checkpoints
            pytest.skip("needs a tmpfs: run as root or with passwordless sudo")
        with pytest.raises(OSError) as failure:
            train(cfg, checkpoint_dir=disk, on_epoch=lambda metrics, _: seen.append(int(metrics["epoch"])))
        assert failure.value.errno in FULL
        assert seen == [1]  # epoch 2's checkpoint did not fit: the loop stopped before reporting it
        state = torch.load(disk / CHECKPOINT_FILE, weights_only=True)
        assert state["epoch"] == 1 and state["config_hash"] == cfg.config_hash()
        shutil.copytree(disk, tmp_path / "saved")
    resumed = train(cfg, checkpoint_dir=tmp_path / "roomy", resume_from=tmp_path / "saved")
    assert resumed.status == "finished" and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    straight = train(cfg)
    assert resumed.history[-1]["val_acc"] == straight.history[-1]["val_acc"]  # resumed exactly


def test_an_export_that_fills_the_disk_leaves_no_file(tmp_path, capsys):
    """``resnetx export`` writes every file to a temporary name first: a full disk leaves nothing."""
    from sweep.cli import main
    from tests.test_fuzz_cli import store

    runs_dir = store()["dir"]
    capsys.readouterr()
    with tiny_filesystem(tmp_path / "disk", size_kb=4) as disk:  # one page: one exported file fits, not two
        if disk is None:
            pytest.skip("needs a tmpfs: run as root or with passwordless sudo")
        rc = main(["export", "--runs-dir", str(runs_dir), "--top", "3", "--by", "val_acc", "--out", str(disk)])
        err = capsys.readouterr().err
        assert rc != 0 and len(err.strip().splitlines()) == 1 and "No space left" in err, err
        assert list(disk.iterdir()) == []
