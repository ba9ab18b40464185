"""A trial leaks nothing and swallows no Ray API change (review items 15 and 16)."""

from __future__ import annotations

import random
import tempfile

import pytest


def test_a_corrupt_checkpoint_leaks_no_work_folder(tmp_path, monkeypatch):
    from ray import tune

    from resnetx.errors import ConfigError
    from search_spaces import load_space
    from sweep.tune import trainable

    corrupt = tmp_path / "checkpoint"
    corrupt.mkdir()
    (corrupt / "checkpoint.pt").write_bytes(b"not a checkpoint")  # what a kill mid-copy can leave
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(str(corrupt)))
    monkeypatch.setattr(tune, "report", lambda *a, **k: None)
    experiment = load_space("quick").sample(random.Random(0))
    experiment["train"] = {**experiment.get("train", {}), "epochs": 1}
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        trainable.run_trial({"experiment": experiment, "config_hash": "x"})
    assert [p.name for p in temp.iterdir() if p.name.startswith("resnetx-trial-")] == []


def test_outside_a_ray_worker_resources_are_the_defaults():
    from sweep.tune.trainable import assigned_resource

    assert assigned_resource("CPU", 1) == 1 and assigned_resource("GPU", 0.0) == 0.0  # the test is the driver


def test_a_changed_ray_api_is_an_error_not_one_cpu(monkeypatch):
    """Before: any exception meant one CPU and no GPU, so a renamed Ray API trained silently slower."""
    import ray

    from sweep.tune.trainable import assigned_resource

    class RenamedContext:  # a runtime context of a Ray version without get_assigned_resources
        pass

    monkeypatch.setattr(ray, "get_runtime_context", RenamedContext)
    with pytest.raises(AttributeError):
        assigned_resource("CPU", 1)
