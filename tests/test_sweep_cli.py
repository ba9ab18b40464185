"""`resnetx sweep` refuses bad input in one line, before Ray starts or anything is written."""

from __future__ import annotations

import pytest

from sweep.cli import main
from sweep.config.overrides import apply_sets, parse_set


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--num-samples", "0"], "num_samples: got 0; must be >= 1"),
        (["--search", "bayes"], "search: got 'bayes'"),
        (["--scheduler", "hyperband"], "scheduler: got 'hyperband'"),
        (["--gpus-per-trial", "-1"], "gpus_per_trial: got -1.0"),
        (["--cpus-per-trial", "0"], "cpus_per_trial: got 0.0"),
        (["--space", "no-such-space"], "no-such-space"),
        (["--objectives", "val_acc:up"], "val_acc:up"),
        (["--objectives", "val_acc:max,nope:min"], "--objectives: got 'nope'; must be a metric every trial reports"),
        (["--objectives", "test_acc:max,params:min"], "--objectives: got 'test_acc'; the test split"),
        (["--objectives", "params:min,flops:min", "--scheduler", "asha"], "--scheduler: got 'asha'"),
        (["--set", "model.fold=0"], "model.fold: got 0"),
        (["--set", "train.lr=-1"], "train.lr: got -1"),
        (["--set", "nonsense"], "--set: got 'nonsense'"),
        (["--trial-timeout", "0"], "trial_timeout_s: got 0.0"),
        (["--rung-metric", "loss", "--scheduler", "asha"], "rung_metric: got 'loss'"),
        (["--rung-metric", "tse"], "rung_metric: got 'tse'; applies to --scheduler asha or moasha only"),
        (["--num-samples", "two"], "invalid int value"),
        # no database driver in the venv: the package to install, before Ray starts; no password shown
        # (pg8000: a driver the dev extra does not install; bare postgresql:// in tests/test_postgres.py)
        (["--tracking-uri", "postgresql+pg8000://me:secret@db:5432/mlflow"],
         "--tracking-uri: got 'postgresql+pg8000://me:***@db:5432/mlflow'; needs the database driver pg8000: "
         "pip install pg8000"),
        (["--tracking-uri", "mysql+pymysql://db/mlflow"], "needs the database driver pymysql: pip install pymysql"),
    ],
)
def test_bad_sweep_options_are_one_line_and_exit_2(tmp_path, capsys, argv, expected):
    runs = tmp_path / "runs"
    try:
        code = main(["sweep", "--runs-dir", str(runs), *argv])
    except SystemExit as exit_:  # argparse's own errors (a non-number where a number goes)
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err and "Traceback" not in err
    assert not runs.exists()  # nothing was created


def test_numbers_on_the_command_line_are_numbers():
    assert parse_set("train.lr=1e-3") == (["train", "lr"], 0.001)
    assert parse_set("train.weight_decay=5e-4")[1] == 0.0005
    assert parse_set("model.num_nodes=[2, 2]")[1] == [2, 2]
    assert parse_set("train.weights=ResNet18_Weights.IMAGENET1K_V1")[1] == "ResNet18_Weights.IMAGENET1K_V1"
    assert apply_sets({"train": {"lr": 0.1}}, ["train.lr=1e-2", "data.name=digits"]) == {
        "train": {"lr": 0.01}, "data": {"name": "digits"}}


def test_gpu_fractions_and_impossible_requests(monkeypatch):
    """1 GPU at 0.2 per trial is 5 slots; a request nothing can meet is refused, not waited on."""
    import ray

    from resnetx.errors import ConfigError
    from sweep.tune.cluster import cluster_slots

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 1.0})
    assert cluster_slots(1, 0.2) == 5 and cluster_slots(1, 0.25) == 4 and cluster_slots(3, 0) == 5
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(ConfigError, match="no trial fits on this cluster"):
        cluster_slots(1, 0.25)
    with pytest.raises(ConfigError, match="no trial fits"):
        cluster_slots(4, 0)


def _sweep_parser():
    import argparse

    from sweep.cli import sweep as sweep_cli

    parser = argparse.ArgumentParser()
    sweep_cli.add_arguments(parser)
    return parser


def test_argparse_defaults_are_the_settings_defaults():
    """One source of truth: every SweepSettings field is an option whose default is the field's."""
    from sweep.cli.sweep import settings_from_args
    from sweep.config.settings import CONFIRM_FIELDS, SweepSettings

    parser = _sweep_parser()
    parsed = vars(parser.parse_args([]))
    defaults = SweepSettings()
    for name in SweepSettings.model_fields:
        if name in CONFIRM_FIELDS:  # resnetx confirm's --sweep, --seeds, --candidates, --noise
            assert name not in parsed and getattr(defaults, name) is None
            continue
        assert name in parsed, f"SweepSettings.{name} has no resnetx sweep option"
        value = tuple(parsed[name]) if name == "sets" else parsed[name]
        assert value == getattr(defaults, name), name
    assert settings_from_args(parser.parse_args([])) == defaults
    text = parser.format_help()
    assert f"(default: {defaults.num_samples})" in text and f"(default: {defaults.space})" in text


def test_the_cli_builds_its_settings_through_the_api(monkeypatch):
    """`resnetx sweep` is a thin wrapper: its options reach the same settings function as run_sweep's."""
    import sweep.api
    from sweep.cli.sweep import settings_from_args

    seen = {}
    real = sweep.api.sweep_settings

    def recording(overrides=None, **options):
        seen.update(options)
        return real(overrides, **options)

    monkeypatch.setattr(sweep.api, "sweep_settings", recording)
    args = _sweep_parser().parse_args(["--num-samples", "3", "--set", "train.epochs=2", "--no-report"])
    settings = settings_from_args(args)
    assert seen["num_samples"] == 3 and seen["sets"] == ["train.epochs=2"] and seen["report"] is False
    assert settings.num_samples == 3 and settings.sets == ("train.epochs=2",) and settings.report is False
