"""The Python API (docs/api.md): ``from sweep import run_sweep, train`` and ``from reports import ...``.

Frame functions are checked on hand-made DataFrames against answers worked out by hand (in the
comments); the documented walk-through, examples/notebook.py, runs end to end on the embedded
default with real Ray, real MLflow and real training, and what it wrote is checked against the
store and the report.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reports import hypervolume, knee, load_sweep, pareto_front, pareto_rank, plot_front, reference_point, schema
from resnetx.errors import ConfigError
from sweep import experiment_config, sweep_settings, train
from sweep.api import override_sets
from sweep.config.overrides import apply_sets
from sweep.config.settings import SweepSettings

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "notebook.py"


# -- hand-made trials ---------------------------------------------------------------------
def _trials() -> pd.DataFrame:
    """val_acc:max, params:min. A, B, D are the front; C is dominated by A (rank 1); E diverged
    (its tiny network would otherwise be on the front); F has no accuracy."""
    return pd.DataFrame({
        "run_id": ["a", "b", "c", "d", "e", "f"],
        "status": ["finished", "finished", "finished", "finished", "diverged", "finished"],
        "val_acc": [0.9, 0.8, 0.7, 0.95, 0.1, math.nan],
        "params": [100.0, 50.0, 200.0, 400.0, 10.0, 30.0],
        "model.fold": [1, 2, 2, 3, 1, 2],
        "model.unit": ["basic", "basic", "mbconv", "basic", "basic", "mbconv"],
    }, index=[10, 11, 12, 13, 14, 15])


def test_pareto_rank_and_front_by_hand():
    df = _trials()
    ranks = pareto_rank(df, "val_acc:max,params:min")
    assert ranks.to_dict() == {10: 0, 11: 0, 12: 1, 13: 0, 14: -1, 15: -1}
    front = pareto_front(df, "val_acc:max,params:min")
    assert list(front["run_id"]) == ["b", "a", "d"]  # along the front: by params
    assert list(front.index) == [11, 10, 13]  # the caller's index is kept
    # without a status column every row counts: then E (10 params) is on the front and C still is not
    no_status = df.drop(columns="status").iloc[:5]
    assert list(pareto_front(no_status)["run_id"]) == ["e", "b", "a", "d"]
    # directions matter: minimising accuracy too, B (0.8, 50) dominates A and D; C (0.7, 200) trades with B
    assert set(pareto_front(df, "val_acc:min,params:min")["run_id"]) == {"b", "c"}
    # a trial a scheduler stopped early is not ranked beside trials trained to the end
    stopped = df.assign(status=["finished", "stopped_early", "finished", "finished", "diverged", "finished"])
    assert pareto_rank(stopped, "val_acc:max,params:min").to_dict()[11] == -1


def test_objectives_default_to_the_frames_own():
    df = _trials()
    assert list(pareto_front(df)["run_id"]) == ["b", "a", "d"]  # val_acc:max,params:min
    df.attrs["objectives"] = "params:max"
    assert list(pareto_front(df)["run_id"]) == ["d"]


def test_hypervolume_by_hand():
    df = _trials()
    # reference (0.5, 500); strips along params: B 50..100 x (0.8-0.5), A 100..400 x (0.9-0.5),
    # D 400..500 x (0.95-0.5) = 15 + 120 + 45 = 180. C is dominated; E (diverged) and F (NaN) do not count.
    assert hypervolume(df, "val_acc:max,params:min", reference=[0.5, 500]) == pytest.approx(180.0)
    assert hypervolume(df, reference={"params": 500, "val_acc": 0.5}) == pytest.approx(180.0)
    # default reference over the rankable rows A-D: val_acc 0.7 - 0.25*0.1 = 0.675, params 400 + 350*0.1 = 435;
    # 50 x 0.125 + 300 x 0.225 + 35 x 0.275 = 6.25 + 67.5 + 9.625
    assert reference_point(df) == pytest.approx([0.675, 435.0])
    assert hypervolume(df) == pytest.approx(83.375)
    # a subset measured in the same box is smaller; B alone: 450 x 0.3
    subset = df[df["model.fold"] == 2]
    assert hypervolume(subset, reference=[0.5, 500]) == pytest.approx(135.0)
    assert hypervolume(df[df["status"] == "diverged"]) == 0.0


def test_hypervolume_in_three_dimensions_by_hand():
    # minimise x, y, z below (1, 1, 1): boxes of 0.5 and 0.25 overlapping in 0.5^3 -> 0.625
    df = pd.DataFrame({"x": [0.0, 0.5], "y": [0.0, 0.5], "z": [0.5, 0.0]})
    assert hypervolume(df, "x:min,y:min,z:min", reference=[1, 1, 1]) == pytest.approx(0.625)


def test_knee_by_hand():
    # the front B (50, 0.8), A (100, 0.9), D (400, 0.95), params on a log axis, normalised to [0, 1]:
    # B (1, 0), A (1/3, 1/3), D (0, 1); only A lies off the line x + y = 1 towards the ideal point
    assert knee(_trials())["run_id"] == "a"
    with pytest.raises(ConfigError, match="has no front"):
        knee(_trials().iloc[4:5])


def test_frame_errors_are_one_line():
    df = _trials()
    for call, expected in ((lambda: pareto_front(df, "latency_ms:min"), "objectives: got 'latency_ms'"),
                           (lambda: pareto_front(df, "val_acc:up"), "objectives: got 'val_acc:up'"),
                           (lambda: hypervolume(df, reference=[0.5]), "reference: got [0.5]"),
                           (lambda: hypervolume(df, reference={"val_acc": 0.5}), "reference:"),
                           (lambda: plot_front(df.drop(columns="params")), "objectives: got 'params'"),
                           (lambda: load_sweep(), "runs_dir: got None"),
                           (lambda: load_sweep("/nonexistent/runs"), "holds no MLflow store")):
        with pytest.raises(ConfigError) as info:
            call()
        assert expected in str(info.value) and "\n" not in str(info.value)


def test_plot_front_is_the_reports_figure_and_shows_inline():
    from matplotlib.figure import Figure

    fig = plot_front(_trials())
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "val_acc"
    assert ax.get_title() == "val_acc vs parameters: 4 trials, 3 on the front"  # A-D plotted, A B D ringed
    assert fig._repr_png_().startswith(b"\x89PNG")  # what IPython shows as a cell's value
    assert plot_front(_trials(), title="mine").axes[0].get_title() == "mine"
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_front(_trials().iloc[4:])


# -- the package roots ---------------------------------------------------------------------
def test_package_roots_are_light_and_export_their_names():
    code = (
        "import sys\n"
        "import sweep, reports, reports.schema\n"
        "heavy = ('ray', 'mlflow', 'torch', 'pandas', 'matplotlib')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
        "import reports.hypervolume, reports.analysis  # the submodule that shares the function's name, first\n"
        "from reports import hypervolume, load_sweep, pareto_front, plot_front\n"
        "from sweep import run_sweep, train\n"
        "print(hypervolume.__module__, reports.hypervolume is hypervolume, run_sweep.__module__, train.__module__)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'mlflow'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "reports.frames True sweep.api sweep.api", "[]"]


def test_all_names_resolve():
    import reports
    import sweep

    for package in (sweep, reports):
        assert package.__all__ and set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            assert callable(getattr(package, name)), name
        with pytest.raises(AttributeError):
            package.no_such_name  # noqa: B018


# -- settings and overrides ----------------------------------------------------------------
def test_dict_overrides_read_back_as_the_values_given():
    given = {"train.epochs": 2, "train.lr": 1e-3, "train.weight_decay": 1e-05, "model.num_nodes": [2, 2],
             "data.name": "digits", "model.first_downsample": True, "train.weights": None, "train.schedule": "null"}
    sets = override_sets(given)
    assert "data.name=digits" in sets and "train.epochs=2" in sets  # what a user would type after --set
    back = apply_sets({}, sets)
    assert back == {"train": {"epochs": 2, "lr": 1e-3, "weight_decay": 1e-05, "weights": None, "schedule": "null"},
                    "model": {"num_nodes": [2, 2], "first_downsample": True}, "data": {"name": "digits"}}
    # as on the command line, text that reads as a number is the number
    assert apply_sets({}, override_sets({"data.root": "3"})) == {"data": {"root": 3.0}}
    assert override_sets({"train": {"epochs": 2}}) == ["train.epochs=2"]
    assert override_sets(["train.epochs=2"]) == ["train.epochs=2"]
    for bad in ("train.epochs=2", {"train.x": object()}, [1]):
        with pytest.raises(ConfigError, match="overrides"):
            override_sets(bad)


def test_sweep_settings_are_the_clis(tmp_path):
    assert sweep_settings() == SweepSettings()
    settings = sweep_settings({"train.epochs": 2}, runs_dir=tmp_path, num_samples=3, sets=["data.subset=400"])
    assert settings.sets == ("data.subset=400", "train.epochs=2") and settings.runs_dir == str(tmp_path)
    with pytest.raises(ConfigError, match=r"num_sampels: got 3; is not a sweep setting; known: space, "):
        sweep_settings(num_sampels=3)
    with pytest.raises(ConfigError, match="num_samples: got 0; must be >= 1"):
        sweep_settings(num_samples=0)


def test_experiment_config_takes_every_kind_of_config():
    cfg = experiment_config("tiny", {"train.epochs": 1, "fold": 2})  # a bare key means the model, as on the CLI
    assert cfg.train.epochs == 1 and cfg.model.fold == 2 and cfg.model.in_channels == 1  # digits
    assert experiment_config(cfg) is cfg
    again = experiment_config(cfg.to_dict())
    assert again.config_hash() == cfg.config_hash()
    # channels and classes were filled from the dataset: another dataset fills them again
    cifar = experiment_config(cfg, {"data.name": "cifar10"})
    assert cifar.model.in_channels == 3 and cifar.data.name == "cifar10" and cifar.model.fold == 2
    model_only = experiment_config({"num_nodes": [1, 1], "unit": "basic", "stem": "cifar"})
    assert model_only.model.num_nodes == (1, 1) and model_only.data.name == "digits"
    with pytest.raises(ConfigError, match="config: got 'int'"):
        experiment_config(3)


# -- one training run ----------------------------------------------------------------------
SMALL = {"train.epochs": 1, "data.subset": 64, "data.image_size": 12, "model.num_nodes": [1, 1],
         "train.batch_size": 32}


def test_train_returns_its_metrics_and_logs_them_like_the_cli(tmp_path):
    from mlflow.tracking import MlflowClient

    run = train("tiny", SMALL, runs_dir=tmp_path, verbose=False)
    assert run.status == "finished" and len(run.history) == 1 and run.config.train.epochs == 1
    assert 0.0 <= run.metrics["best_val_acc"] <= 1.0 and run.metrics["params"] > 0
    logged = MlflowClient(run.tracking_uri).get_run(run.run_id)
    assert logged.data.tags[schema.TAG_ROLE] == schema.ROLE_TRAIN and logged.info.status == "FINISHED"
    assert logged.data.metrics["best_val_acc"] == pytest.approx(run.metrics["best_val_acc"])
    assert logged.data.params["model.num_nodes"] == "[1, 1]" and logged.info.run_name == "train-tiny"
    # the same config, not logged: no store is created
    quiet = train(run.config, runs_dir=tmp_path / "none", mlflow=False, verbose=False)
    assert quiet.run_id is None and not (tmp_path / "none" / "mlflow.db").exists()
    assert quiet.metrics["params"] == run.metrics["params"]


# -- the walk-through, end to end ----------------------------------------------------------
@pytest.mark.slow
def test_the_notebook_example_runs_and_its_numbers_are_the_reports(tmp_path):
    runs = tmp_path / "runs"
    env = {**os.environ, "NOTEBOOK_RUNS_DIR": str(runs), "NOTEBOOK_TRIALS": "3", "NOTEBOOK_EPOCHS": "2",
           "NOTEBOOK_SUBSET": "400", "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "160",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}  # this checkout
    done = subprocess.run([sys.executable, str(NOTEBOOK)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "trials 3/3 done" in out and "Pareto front" in out and "exported:" in out  # the CLI's lines
    assert "Trial status" not in out + done.stderr  # no Ray status tables

    df = load_sweep(runs)
    assert len(df) == 3 and set(df["status"]) <= set(schema.RANKABLE_STATUSES) | {"diverged"}
    assert df.attrs["objectives"] == "val_acc:max,params:min"
    assert list(df.columns[:5]) == ["run_id", "trial_id", "status", "epochs", "pareto_rank"]
    assert (df.loc[df["status"] == "finished", "epochs"] == 2).all() and (df["train.epochs"] == 2).all()
    assert (df["data.subset"] == 400).all() and {"model.fold", "model.unit", "flops", "best_val_acc"} <= set(df.columns)
    # ranks and files agree with the report the sweep wrote
    report_dir = runs / "reports" / df.attrs["sweep_run_id"]
    report = pd.read_csv(report_dir / "pareto.csv")
    ranks = dict(zip(df["run_id"], df["pareto_rank"]))
    assert {r: ranks[r] for r in report["run_id"]} == dict(zip(report["run_id"], report["pareto_rank"]))
    assert all(ranks[r] == -1 for r in set(ranks) - set(report["run_id"]))  # failed.csv: never ranked
    assert (runs / "front.png").read_bytes() == (report_dir / "pareto.png").read_bytes()
    # the exported file is the knee (or ties with it on both objectives) and trains as it is
    (exported,) = (runs / "export").glob("*.yaml")
    document = yaml.safe_load(exported.read_text())
    best = knee(df)
    chosen = df[df["run_id"] == document["provenance"]["mlflow_run_id"]].iloc[0]
    assert (chosen["val_acc"], chosen["params"]) == (best["val_acc"], best["params"])
    assert experiment_config(str(exported)).config_hash() == chosen["config_hash"]
    assert np.isfinite(hypervolume(df)) and hypervolume(df) > 0
