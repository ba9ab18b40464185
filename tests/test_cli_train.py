"""`resnetx train` end to end: the real CLI, a real sqlite MLflow store, read back through MlflowClient."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from mlflow.tracking import MlflowClient

from reports import schema
from sweep.cli import main
from sweep.config.experiment import ExperimentConfig, load_experiment
from sweep.config.paths import sqlite_uri
from sweep.training.checkpoint import CHECKPOINT_FILE

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "digits-tiny.yaml")
QUICK = ["--set", "data.subset=64", "--set", "data.image_size=12", "--set", "model.num_nodes=[1,1]",
         "--set", "train.batch_size=32"]


def _only_run(runs: Path):
    client = MlflowClient(sqlite_uri(runs))
    experiment = client.get_experiment_by_name("resnetx")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_train_digits_tiny_reaches_90_percent_and_logs_everything(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["train", EXAMPLE, "--runs-dir", str(runs), "--checkpoint-dir", str(tmp_path / "ckpt")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "best_val_acc" in out and "mlflow run" in out
    client, run = _only_run(runs)
    cfg = load_experiment(EXAMPLE, [])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags[schema.TAG_ROLE] == schema.ROLE_TRAIN and tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
    assert tags[schema.TAG_DATASET] == "digits" and tags[schema.TAG_CONFIG_HASH] == cfg.config_hash()
    assert tags[schema.TAG_MODEL_HASH] == cfg.model.canonical_hash()
    assert run.data.params["model.num_nodes"] == "[2, 2, 2]" and run.data.params["train.epochs"] == "10"
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted(m.step for m in history) == list(range(1, cfg.train.epochs + 1))
    for key in schema.EPOCH_METRICS:
        assert len(client.get_metric_history(run.info.run_id, key)) == cfg.train.epochs, key
    metrics = run.data.metrics
    assert metrics["best_val_acc"] >= 0.9 and max(m.value for m in history) == metrics["best_val_acc"]
    assert {"params", "flops", "latency_ms", "train_time_s"} <= set(metrics)
    logged = client.download_artifacts(run.info.run_id, schema.CONFIG_ARTIFACT, str(tmp_path))
    again = ExperimentConfig(**yaml.safe_load(Path(logged).read_text()))
    assert again.config_hash() == cfg.config_hash()
    assert torch.load(tmp_path / "ckpt" / CHECKPOINT_FILE, weights_only=True)["epoch"] == cfg.train.epochs


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    for sets, message in ((["train.lr=-1"], "train.lr: got -1; must be > 0"),
                          (["model.fold=0"], "model.fold: got 0; must be >= 1"),
                          (["data.name=cifar10", f"data.root={tmp_path}"], "data.root:")):
        args = ["train", EXAMPLE, "--runs-dir", str(tmp_path), "--no-mlflow"]
        for item in sets:
            args += ["--set", item]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"resnetx: error: {message}") and err.count("\n") == 1, err
    assert main(["train", str(tmp_path / "missing.yaml"), "--no-mlflow"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["train", EXAMPLE, "--runs-dir", str(tmp_path), "--resume", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("resnetx: error: --resume:")
    assert not (tmp_path / "mlflow.db").exists()  # refused before any MLflow run was opened


def test_resume_through_the_cli(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    base = ["train", "tiny", "--no-mlflow", "--runs-dir", str(tmp_path), *QUICK]
    assert main([*base, "--set", "train.epochs=1", "--checkpoint-dir", str(ckpt)]) == 0
    capsys.readouterr()
    # another lr would continue at the wrong point of another schedule: refused, naming the field
    assert main([*base, "--set", "train.epochs=1", "--set", "train.lr=0.01", "--resume", str(ckpt)]) == 2
    assert "train.lr 0.1 -> 0.01" in capsys.readouterr().err
    # a longer run only when asked for
    assert main([*base, "--set", "train.epochs=2", "--resume", str(ckpt)]) == 2
    assert "--extend-epochs" in capsys.readouterr().err
    assert main([*base, "--set", "train.epochs=2", "--resume", str(ckpt), "--extend-epochs"]) == 0
    capsys.readouterr()
    state = torch.load(ckpt / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]


def test_resume_from_the_checkpoint_file_itself(tmp_path, capsys):
    """--resume DIR/checkpoint.pt (the file, as `ls` shows it) continues and checkpoints into DIR
    (it crashed after one epoch, treating the file as the folder to write into)."""
    ckpt = tmp_path / "ckpt"
    base = ["train", "tiny", "--no-mlflow", "--runs-dir", str(tmp_path), *QUICK]
    assert main([*base, "--set", "train.epochs=1", "--checkpoint-dir", str(ckpt)]) == 0
    assert main([*base, "--set", "train.epochs=2", "--resume", str(ckpt / CHECKPOINT_FILE), "--extend-epochs"]) == 0
    capsys.readouterr()
    state = torch.load(ckpt / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]


def test_divergence_ends_the_run_failed_with_status(tmp_path, capsys):
    code = main(["train", "tiny", "--runs-dir", str(tmp_path), *QUICK, "--set", "train.lr=1e6",
                 "--set", "train.warmup_epochs=0", "--set", "train.epochs=3"])
    assert code == 1 and "diverged" in capsys.readouterr().out
    _, run = _only_run(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_DIVERGED


def test_the_cli_is_a_thin_wrapper_over_the_api(tmp_path, monkeypatch):
    """`resnetx train` passes its options to sweep.api.train (one implementation) and exits 1 on divergence."""
    import sweep.api

    calls = []

    class Diverged:
        status = schema.STATUS_DIVERGED

    def fake_train(config, overrides=None, **options):
        calls.append((config, overrides, options))
        return Diverged()

    monkeypatch.setattr(sweep.api, "train", fake_train)
    code = main(["train", "tiny", "--set", "train.epochs=2", "--runs-dir", str(tmp_path), "--no-mlflow",
                 "--resume", str(tmp_path / "ckpt"), "--extend-epochs"])
    assert code == 1
    ((config, overrides, options),) = calls
    assert config == "tiny" and overrides == ["train.epochs=2"]
    assert options["runs_dir"] == str(tmp_path) and options["mlflow"] is False and options["extend_epochs"] is True
    assert options["resume_from"] == str(tmp_path / "ckpt") and options["checkpoint_dir"] is None
