"""`resnetx export --with-weights`: a real sweep's trained weights, exported and rebuilt.

The sweep is real (Ray Tune, MLflow, training on the offline digits data, two tiny trials of
two epochs on all of digits); the check is the one that matters to a user: the network rebuilt from the
exported files alone (YAML + weights) scores, on the same validation split in eval mode, the
``val_acc`` its trial logged, to 1e-6.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from reports import export as export_mod
from reports.export import WeightsUnavailable, find_checkpoint, local_folder
from resnetx import build_model, builtin_config
from resnetx.errors import ConfigError
from sweep.cli import main
from tests.sweep_helpers import all_runs, client_for, split_runs

# Three units, folded once: the two trials differ in unit and width (the sampled axes left open).
# All of digits (not FAST's 400-image subset): 2 epochs then score 0.45-0.69 here, well above
# chance (0.1), so rebuilding the logged accuracy cannot happen by luck with the wrong weights.
TINY = ["--set", "train.epochs=2", "--set", "model.num_nodes=[1,1,1]", "--set", "model.fold=2",
        "--set", "model.start_id=2", "--set", "model.end_id=3"]


# -- a real sweep -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> dict[str, Any]:
    runs_dir = tmp_path_factory.mktemp("weights") / "runs"
    rc = main(["sweep", "--runs-dir", str(runs_dir), "--num-samples", "2", "--max-concurrent", "2",
               "--search", "random", "--seed", "5", *TINY])
    assert rc == 0
    client = client_for(runs_dir)
    parents, children = split_runs(all_runs(client))
    assert len(parents) == 1 and len(children) == 2
    return {"runs_dir": runs_dir, "client": client, "parent": parents[0],
            "children": {c.info.run_id: c for c in children}}


def _export(swept: dict[str, Any], out: Path, capsys, *selection: str) -> tuple[list[Path], list[str]]:
    capsys.readouterr()
    rc = main(["export", "--runs-dir", str(swept["runs_dir"]), "--out", str(out), "--with-weights", *selection])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0, lines
    return sorted(out.glob("*.yaml")), lines


def validation_accuracy(model: torch.nn.Module, experiment: Any) -> float:
    """Accuracy on the experiment's validation split, computed as the training loop does (eval mode)."""
    from sweep.data.augment import normalizer, to_input
    from sweep.data.load import load_dataset

    data = load_dataset(experiment.data)
    shift, scale = normalizer(data.mean, data.std, torch.device("cpu"))
    x, y = torch.from_numpy(data.val_x), torch.from_numpy(data.val_y)
    model.eval()
    with torch.no_grad():
        predicted = model(to_input(x, shift, scale)).argmax(1)
    return (predicted == y).sum().item() / len(y)


@pytest.mark.slow
def test_exported_weights_rebuild_the_logged_validation_accuracy(swept, tmp_path, capsys):
    from sweep.config.experiment import ExperimentConfig

    paths, lines = _export(swept, tmp_path / "front", capsys, "--front")
    parent = swept["parent"]
    assert lines[0].startswith(f"exporting from sweep {parent.info.run_name} (run {parent.info.run_id}, 2 trials")
    assert paths and not any("no weights" in line for line in lines)
    assert not list((tmp_path / "front").glob(".*"))  # no temp files left behind
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        recorded = doc["provenance"]["weights"]
        weights = path.with_suffix(".pt")
        assert recorded["file"] == weights.name and weights.is_file()
        assert recorded["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
        assert recorded["epoch"] == 2 and Path(recorded["checkpoint"]).is_file()
        # the file is a plain state dict: loads with weights_only=True, tensors only
        state = torch.load(weights, weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
        run = swept["children"][doc["provenance"]["mlflow_run_id"]]
        logged = run.data.metrics["val_acc"]
        assert logged > 0.3  # a trained network, not chance
        experiment = ExperimentConfig(**doc)
        trained = build_model(path, weights=weights)
        assert validation_accuracy(trained, experiment) == pytest.approx(logged, abs=1e-6)
        assert recorded["val_acc"] == pytest.approx(logged, abs=1e-12)
        untrained = build_model(path)  # the same config without the weights is another network
        assert any(not torch.equal(a, b) for a, b in zip(untrained.state_dict().values(), state.values()))

        # `resnetx show` finds them and checks them
        capsys.readouterr()
        assert main(["show", str(path), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["weights"]["file"] == str(weights) and shown["weights"]["checksum"] == "ok"
        assert main(["show", str(path)]) == 0
        assert f"trained weights: {weights} (checksum ok, epoch 2)" in capsys.readouterr().out


@pytest.mark.slow
def test_deleted_checkpoint_is_one_line_and_the_config_is_still_exported(swept, tmp_path, capsys):
    client, parent = swept["client"], swept["parent"]
    tune_path = local_folder(client.get_run(parent.info.run_id).data.tags["tune_path"])
    assert tune_path is not None
    victim = next(iter(swept["children"].values()))
    trial_id = victim.data.tags["trial_id"]
    checkpoint_dir = find_checkpoint(str(tune_path), trial_id).parent
    aside = tmp_path / "aside"
    shutil.move(str(checkpoint_dir), aside)
    try:
        paths, lines = _export(swept, tmp_path / "top", capsys, "--top", "2", "--by", "val_acc")
    finally:
        shutil.move(str(aside), checkpoint_dir)
    notes = [line for line in lines if "no weights" in line]
    assert len(notes) == 1, lines
    assert notes[0].startswith(f"no weights for run {victim.info.run_name}: its checkpoint was deleted from ")
    assert notes[0].endswith("; exported its config only")
    assert len(paths) == 2
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        if doc["provenance"]["mlflow_run_id"] == victim.info.run_id:
            assert "weights" not in doc["provenance"] and not path.with_suffix(".pt").exists()
            capsys.readouterr()
            assert main(["show", str(path), "--json"]) == 0
            assert "weights" not in json.loads(capsys.readouterr().out)
        else:
            assert path.with_suffix(".pt").is_file() and doc["provenance"]["weights"]["sha256"]


# -- build_model(FILE, weights=...) and show, without a sweep ----------------------------------
class Payload:
    """An object, not tensors: ``weights_only=True`` refuses to unpickle it (no code of it runs)."""


def _exported_pair(folder: Path, seed: int = 0) -> tuple[Path, Path, dict]:
    """A YAML + weights pair written the way `resnetx export` writes them."""
    from sweep.training.checkpoint import save_weights

    torch.manual_seed(seed)
    config = builtin_config("tiny").replace(num_classes=10, in_channels=1)
    model = build_model(config)
    weights = save_weights(folder / "01-t-abc.pt", model.state_dict())
    checksum = hashlib.sha256(weights.read_bytes()).hexdigest()
    doc = {"model": config.to_dict(), "data": {"name": "digits"},
           "provenance": {"weights": {"file": weights.name, "sha256": checksum}}}
    path = folder / "01-t-abc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, weights, model.state_dict()


def test_build_model_loads_exported_weights(tmp_path):
    path, weights, state = _exported_pair(tmp_path)
    rebuilt = build_model(str(path), weights=str(weights))
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in state.items())
    assert build_model(path).config == rebuilt.config


def test_build_model_refuses_a_file_that_is_not_the_exported_one(tmp_path, capsys):
    path, weights, _ = _exported_pair(tmp_path)
    (tmp_path / "b").mkdir()
    _, other, _ = _exported_pair(tmp_path / "b", seed=1)  # same network, other values
    with pytest.raises(ConfigError, match=r"does not match the config's provenance\.weights\.sha256") as err:
        build_model(path, weights=other)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="file not found"):
        build_model(path, weights=tmp_path / "gone.pt")
    # show says so too
    shutil.copy(other, weights)
    assert main(["show", str(path)]) == 0
    assert "checksum MISMATCH" in capsys.readouterr().out
    weights.unlink()
    assert main(["show", str(path)]) == 0
    assert f"trained weights: {weights} is missing" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="file not found"):
        build_model(path, weights=weights)


def test_build_model_weights_of_another_network_or_code_are_one_line_errors(tmp_path):
    from sweep.training.checkpoint import save_weights

    path, _, _ = _exported_pair(tmp_path)
    doc = yaml.safe_load(path.read_text())
    del doc["provenance"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(doc))
    wider = save_weights(tmp_path / "wide.pt", build_model(builtin_config("tiny").replace(
        num_classes=10, in_channels=1, base=24)).state_dict())
    with pytest.raises(ConfigError, match=r"do not fit this config: .* of another shape \(first: "):
        build_model(plain, weights=wider)
    poisoned = tmp_path / "poisoned.pt"
    torch.save({"x": Payload()}, poisoned)
    with pytest.raises(ConfigError, match="is not a plain state dict"):
        build_model(plain, weights=poisoned)
    with pytest.raises(ConfigError, match="device: got 'meta'"):
        build_model(plain, device="meta", weights=wider)


def test_build_model_refuses_a_model_left_to_its_dataset(tmp_path):
    """resnetx reads no datasets: it must not build the ImageNet defaults for a digits experiment."""
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"model": {"num_nodes": [1, 1], "base": 8}, "data": {"name": "digits"}}))
    with pytest.raises(ConfigError, match=r"model\.in_channels: got None; must be set in the file"):
        build_model(path)
    with pytest.raises(ConfigError, match="file not found"):
        build_model(tmp_path / "none.yaml")


# -- where Tune keeps the checkpoints ---------------------------------------------------------
def test_trial_folder_is_matched_on_the_whole_trial_id(tmp_path):
    for name, epoch in (("run_trial_ab12c_00001_1_fold=2", 3), ("run_trial_ab12c_000011_11_fold=1", 9)):
        for n in range(1, epoch + 1):
            (tmp_path / name / f"checkpoint_{n:06d}").mkdir(parents=True)
        (tmp_path / name / f"checkpoint_{epoch:06d}" / "checkpoint.pt").write_bytes(b"")
    found = find_checkpoint(str(tmp_path), "ab12c_00001")
    assert found == tmp_path / "run_trial_ab12c_00001_1_fold=2" / "checkpoint_000003" / "checkpoint.pt"
    with pytest.raises(WeightsUnavailable, match="no folder of trial ab12c_00002"):
        find_checkpoint(str(tmp_path), "ab12c_00002")
    with pytest.raises(WeightsUnavailable, match="not a folder on this machine"):
        find_checkpoint("s3://bucket/ray/sweep", "ab12c_00001")
    assert local_folder(f"file://{tmp_path}") == tmp_path


def test_reports_names_match_what_the_sweep_writes():
    """reports may not import sweep: the names it repeats are checked against the writer's here."""
    from sweep.training import checkpoint
    from sweep.tune.runner import TAG_TUNE_PATH

    assert export_mod.TAG_TUNE_PATH == TAG_TUNE_PATH
    assert export_mod.CHECKPOINT_FILE == checkpoint.CHECKPOINT_FILE
    # the "model" key of a checkpoint is exercised end to end by the sweep tests above
