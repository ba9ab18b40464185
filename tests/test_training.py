"""Experiment config and training loop: validation, hashing, schedules, reproducibility, exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from reports.schema import EPOCH_METRICS, FINAL_METRICS, LATENCY_METHOD_METRICS
from resnetx import build_model
from resnetx.errors import ConfigError
from sweep.config.experiment import ExperimentConfig, TrainConfig, load_experiment
from sweep.data.load import load_dataset
from sweep.training.checkpoint import CHECKPOINT_FILE
from sweep.training.loop import EPOCH_KEYS, lr_at, seed_everything, train

SMALL_MODEL = {"num_nodes": [1, 1], "unit": "basic", "stem": "cifar", "stem_width": 8, "base": 8, "bottle_scale": 1.0}


def small(**train) -> ExperimentConfig:
    return ExperimentConfig(model=SMALL_MODEL, data={"subset": 192, "image_size": 12},
                            train={"epochs": 4, "batch_size": 32, "device": "cpu", "seed": 7, **train})


@pytest.fixture(scope="module")
def data():
    return load_dataset(small().data)


# -- config ------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "message"), [
    ({"model": {"fold": 0}}, "model.fold: got 0; must be >= 1"),
    ({"model": {}, "train": {"lr": -1}}, "train.lr: got -1; must be > 0"),
    ({"model": {}, "train": {"optimizer": "lamb"}}, "train.optimizer: got 'lamb'"),
    ({"model": {}, "data": {"name": "imagenet"}}, "data.name: got 'imagenet'; must be one of digits"),
    ({"model": {}, "data": {"val_fraction": 0}}, "data.val_fraction: got 0"),
    ({"model": {}, "optimiser": {}}, "optimiser: got {}; unknown key"),
    ({"model": {}, "train": {"amp": "yes"}}, "train.amp: got 'yes'; must be auto, true or false"),
    ({"model": {}, "train": {"epochs": 0}}, "train.epochs: got 0; must be >= 1"),
    ({"model": {"num_classes": 1000}}, "model.num_classes: got 1000; dataset digits has 10"),
    ({"model": {}, "train": {"freeze": "all"}}, "train.freeze: got 'all'; needs train.weights"),
])
def test_config_errors_are_one_line_and_name_the_section(raw, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(**raw)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_model_is_filled_from_the_dataset_and_round_trips():
    cfg = ExperimentConfig(model=SMALL_MODEL, provenance={"source": "resnetx export"})
    assert (cfg.model.in_channels, cfg.model.num_classes) == (1, 10)
    again = ExperimentConfig(**cfg.to_dict())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    flat = cfg.flat()
    assert flat["model.num_nodes"] == [1, 1] and flat["train.lr"] == 0.1 and flat["data.name"] == "digits"


def test_config_hash_ignores_execution_only_fields():
    base = small()
    for change in ({"seed": 1}, {"device": "auto"}, {"num_threads": 2}, {"compile": True}):
        assert small(**change).config_hash() == base.config_hash()
    assert small(lr=0.05).config_hash() != base.config_hash()
    folded = ExperimentConfig(**{**base.to_dict(), "model": {**base.model.to_dict(), "fold": 1, "start_id": 2}})
    assert folded.config_hash() == base.config_hash()  # same network (model.canonical)


def test_load_experiment_levels(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {num_nodes: [2, 2], stem: cifar, unit: basic}\ntrain: {epochs: 3, lr: 0.2}\n")
    cfg = load_experiment(str(path), ["train.lr=0.3", "fold=2", "model.start_id=2"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.fold, cfg.train.batch_size) == (3, 0.3, 2, 128)
    tiny = load_experiment("tiny", ["data.image_size=20"])
    assert tiny.model.stem == "cifar" and tiny.model.in_channels == 1 and tiny.data.image_size == 20
    with pytest.raises(ConfigError, match=r"^model\.fold: got 0"):
        load_experiment("tiny", ["model.fold=0"])


def test_lr_schedule_shapes():
    cfg = TrainConfig(epochs=10, lr=1.0, warmup_epochs=2)
    assert lr_at(cfg, 1.0) == pytest.approx(0.5) and lr_at(cfg, 2.0) == pytest.approx(1.0)
    assert lr_at(cfg, 6.0) == pytest.approx(0.5) and lr_at(cfg, 10.0) == pytest.approx(0.0, abs=1e-12)
    step = TrainConfig(epochs=10, lr=1.0, warmup_epochs=0, schedule="step")
    assert [lr_at(step, t) for t in (1, 6, 9)] == pytest.approx([1.0, 0.1, 0.01])
    assert lr_at(TrainConfig(epochs=4, lr=0.3, schedule="constant", warmup_epochs=0), 3.9) == 0.3


# -- training ----------------------------------------------------------------------------
def test_same_config_and_seed_give_the_same_metrics(data, tmp_path):
    seen, losses = [], []

    def on_epoch(metrics, checkpoint_dir):
        last = metrics["epoch"] == 2  # the last epoch also carries test_acc (evaluate_test is on)
        assert tuple(metrics) == (*EPOCH_KEYS, *(("test_acc",) if last else ()))
        assert set(EPOCH_KEYS) - {"epoch"} == set(EPOCH_METRICS)
        losses.append(metrics["train_loss"])
        assert metrics["tse"] == pytest.approx(sum(losses))  # the sum of the training losses so far
        assert (checkpoint_dir / CHECKPOINT_FILE).is_file()  # written before the callback
        seen.append(metrics["epoch"])

    cfg = small(epochs=2, evaluate_test=True)
    first = train(cfg, data=data, on_epoch=on_epoch, checkpoint_dir=tmp_path)
    second = train(cfg, data=data)
    keys = ("train_loss", "val_loss", "val_acc")
    assert [[h[k] for k in keys] for h in first.history] == [[h[k] for k in keys] for h in second.history]
    assert first.status == "finished" and seen == [1, 2]
    assert set(first.final) <= set(FINAL_METRICS) | set(LATENCY_METHOD_METRICS) | {"val_acc"}
    assert "test_acc" in first.final
    assert first.final["params"] > 0 and first.final["flops"] > 0 and first.final["latency_ms"] > 0
    # measured once, with its method: 30 timed repeats and their spread
    assert first.final["latency_repeats"] == 30 and first.final["latency_iqr_ms"] >= 0
    assert 0.0 <= first.final["best_val_acc"] <= 1.0
    other_seed = train(small(epochs=2, seed=8), data=data)
    assert other_seed.history[-1]["train_loss"] != first.history[-1]["train_loss"]


class _Stop(Exception):
    pass


def test_resume_continues_exactly(data, tmp_path):
    cfg = small(epochs=4)
    straight = train(cfg, data=data, checkpoint_dir=tmp_path / "straight")

    def crash_after_two(metrics, _):
        if metrics["epoch"] == 2:
            raise _Stop  # a killed trial: the checkpoint of epoch 2 is already on disk

    with pytest.raises(_Stop):
        train(cfg, data=data, on_epoch=crash_after_two, checkpoint_dir=tmp_path / "half")
    resumed = train(cfg, data=data, checkpoint_dir=tmp_path / "half", resume_from=tmp_path / "half")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    a = torch.load(tmp_path / "straight" / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(tmp_path / "half" / CHECKPOINT_FILE, weights_only=True)
    assert a["epoch"] == b["epoch"] == 4
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert not [p for p in (tmp_path / "half").iterdir() if p.name != CHECKPOINT_FILE]  # no temp files left


def test_resume_refuses_another_model(data, tmp_path):
    train(small(epochs=1), data=data, checkpoint_dir=tmp_path)
    other = ExperimentConfig(**{**small().to_dict(), "model": {**SMALL_MODEL, "base": 4}})
    with pytest.raises(ConfigError, match=r"^--resume: .*was written for model"):
        train(other, data=data, resume_from=tmp_path)


def test_divergence_stops_with_status(data, tmp_path):
    reports = []
    result = train(small(lr=1e6, warmup_epochs=0, epochs=3), data=data, checkpoint_dir=tmp_path,
                   on_epoch=lambda m, c: reports.append((m, c)))
    assert result.status == "diverged" and len(result.history) == 1
    (metrics, checkpoint_dir), = reports
    assert not math.isfinite(metrics["train_loss"]) and checkpoint_dir is None
    assert not (tmp_path / CHECKPOINT_FILE).exists()  # a broken network is not checkpointed


def test_num_threads_is_respected(data):
    before = torch.get_num_threads()
    try:
        train(small(epochs=1, num_threads=1), data=data)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_a_config_error(data):
    with pytest.raises(ConfigError, match=r"^train\.device: got .cuda."):
        train(small(device="cuda"), data=data)


def test_option_paths_run_on_cpu(data):
    """adamw + step schedule + clipping + channels_last + amp=true (a no-op off CUDA) train finitely."""
    result = train(small(epochs=2, optimizer="adamw", lr=0.003, schedule="step", grad_clip=1.0,
                         channels_last=True, amp=True, label_smoothing=0.1), data=data)
    assert result.status == "finished" and result.info["amp"] == "off"
    assert all(math.isfinite(h["train_loss"]) for h in result.history)


def _torchvision_source_with_statistics():
    """torchvision's resnet18 with non-trivial BN running statistics (a fresh one has mean 0, var 1)."""
    import torchvision

    source = torchvision.models.resnet18()
    generator = torch.Generator().manual_seed(0)
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return source


def test_torchvision_warm_start_with_frozen_backbone(tmp_path):
    source = _torchvision_source_with_statistics()
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    cfg = ExperimentConfig(model={"num_nodes": [2, 2, 2, 2], "unit": "basic", "bottle_scale": 1.0},
                           data={"subset": 32, "image_size": 16, "augment": False},
                           train={"epochs": 1, "batch_size": 16, "device": "cpu",
                                  "weights": str(tmp_path / "r18.pth"), "freeze": "backbone"})
    result = train(cfg, data=load_dataset(cfg.data), checkpoint_dir=tmp_path)
    assert result.info["warm_start"].startswith("loaded ")
    weights = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["model"]
    # A frozen, loaded tensor is still torchvision's; the fresh classifier (10 classes) has trained.
    theirs = source.state_dict()
    assert torch.equal(weights["units.0.conv1.weight"], theirs["layer1.0.conv1.weight"])
    # Frozen batch norms keep the loaded statistics bit for bit (they were drifting in train mode).
    from resnetx.pretrained import torchvision_key_map

    loaded = set(load_torchvision_weights_report(cfg, tmp_path / "r18.pth").loaded)
    frozen_norm_buffers = [(ours, tv) for tv, ours in torchvision_key_map(build_model(cfg.model)).items()
                           if ours.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
                           and ours in loaded and not ours.startswith("head.")]
    assert len(frozen_norm_buffers) > 40
    for ours, tv in frozen_norm_buffers:
        assert torch.equal(weights[ours], theirs[tv]), ours
    # The head has trained: compare against its initial values (same seed, same build, same fresh init).
    seed_everything(cfg.train.seed)
    initial = build_model(cfg.model).state_dict()
    assert weights["head.fc.weight"].shape == (10, 512)
    assert not torch.equal(weights["head.fc.weight"], initial["head.fc.weight"])
    with pytest.raises(ConfigError, match=r"^train\.weights: got"):
        train(cfg.replace(train={**cfg.train.to_dict(), "weights": str(tmp_path / "none.pth")}),
              data=load_dataset(cfg.data))


def test_every_example_config_loads():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        cfg = load_experiment(str(path))
        assert cfg.model.num_classes == 10, path.name


def test_torchvision_weights_on_a_unit_torchvision_lacks_are_refused_at_validation():
    with pytest.raises(ConfigError, match=r"^train.weights: got 'ResNet18_Weights.IMAGENET1K_V1'; .*'mbconv'"):
        ExperimentConfig(model={"unit": "mbconv", "stem": "cifar", "bottle_scale": 0.5},
                         train={"weights": "ResNet18_Weights.IMAGENET1K_V1"})


def test_freeze_all_trains_only_the_head(tmp_path):
    """``freeze: all`` used to validate and then refuse to train ("leaves no parameter to train")."""
    source = _torchvision_source_with_statistics()
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    cfg = ExperimentConfig(model={"num_nodes": [2, 2, 2, 2], "unit": "basic", "bottle_scale": 1.0, "fold": 2,
                                  "start_id": 2, "end_id": 7},
                           data={"subset": 32, "image_size": 16, "augment": False},
                           train={"epochs": 1, "batch_size": 16, "device": "cpu",
                                  "weights": str(tmp_path / "r18.pth"), "freeze": "all"})
    result = train(cfg, data=load_dataset(cfg.data), checkpoint_dir=tmp_path)
    assert result.status == "finished"
    weights = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["model"]
    from resnetx import load_torchvision_weights

    seed_everything(cfg.train.seed)
    start = build_model(cfg.model)  # what training started from: same seed, same build, same load
    report = load_torchvision_weights(start, str(tmp_path / "r18.pth"))
    start_state = start.state_dict()
    assert any(k.startswith("shortcuts.") for k in report.fresh)  # fresh projections exist, and stay frozen
    outside_head = [k for k in weights if not k.startswith("head.")]
    assert all(torch.equal(weights[k], start_state[k]) for k in outside_head)  # BN statistics included
    assert not torch.equal(weights["head.fc.weight"], start_state["head.fc.weight"])


def load_torchvision_weights_report(cfg, path):
    from resnetx import load_torchvision_weights

    return load_torchvision_weights(build_model(cfg.model), str(path))


def _small_cfg(**train):
    return ExperimentConfig(model={"num_nodes": [1, 1], "base": 8, "unit": "basic", "stem": "cifar",
                                   "bottle_scale": 1.0},
                            data={"subset": 64, "image_size": 8, "augment": False},
                            train={"epochs": 2, "batch_size": 32, "device": "cpu", **train})


@pytest.mark.parametrize(("change", "named"), [
    ({"lr": 0.05}, "train.lr 0.1 -> 0.05"),
    ({"batch_size": 16}, "train.batch_size 32 -> 16"),
    ({"epochs": 3}, "train.epochs 2 -> 3"),
])
def test_resume_refuses_a_checkpoint_of_another_config(tmp_path, change, named):
    cfg = _small_cfg()
    data = load_dataset(cfg.data)
    train(cfg, data=data, checkpoint_dir=tmp_path)
    other = cfg.replace(train={**cfg.train.to_dict(), **change})
    with pytest.raises(ConfigError, match=rf"^--resume: got '.*'; was written for another config: {named}"):
        train(other, data=data, resume_from=tmp_path)


def test_resume_refuses_another_subset(tmp_path):
    cfg = _small_cfg()
    train(cfg, data=load_dataset(cfg.data), checkpoint_dir=tmp_path)
    other = cfg.replace(data={**cfg.data.to_dict(), "subset": 32})
    with pytest.raises(ConfigError, match=r"data.subset 64 -> 32"):
        train(other, data=load_dataset(other.data), resume_from=tmp_path)


def test_resume_may_extend_epochs_when_asked(tmp_path):
    cfg = _small_cfg()
    data = load_dataset(cfg.data)
    train(cfg, data=data, checkpoint_dir=tmp_path)
    longer = cfg.replace(train={**cfg.train.to_dict(), "epochs": 3})
    result = train(longer, data=data, resume_from=tmp_path, extend_epochs=True)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    shorter = cfg.replace(train={**cfg.train.to_dict(), "epochs": 1})
    with pytest.raises(ConfigError, match=r"train.epochs 2 -> 1"):
        train(shorter, data=data, resume_from=tmp_path, extend_epochs=True)


def test_costs_given_by_the_caller_are_reported_not_measured_again(data, monkeypatch):
    """The Ray trainable measures params/FLOPs/latency before training; train() used to measure them again."""
    import sweep.training.loop as loop

    def must_not_run(*args, **kwargs):
        raise AssertionError("costs measured a second time")

    monkeypatch.setattr(loop, "measure_costs", must_not_run)
    costs = {"params": 123.0, "flops": 456.0, "latency_ms": 7.5}
    result = train(small(epochs=1), data=data, costs=costs)
    assert {k: result.final[k] for k in costs} == costs
