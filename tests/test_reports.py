"""Reports read from a real MLflow store (sqlite, real runs, real artifacts; no mocks).

``build_store`` writes what ``resnetx sweep`` writes (docs/architecture.md, "MLflow layout of
a sweep"): an older sweep, then the latest sweep with finished, stopped, diverged, failed and
infeasible trials, a duplicate config, three folds, two seeds and one warm-started trial; and
a separate experiment holding only ``resnetx train`` runs. test_export and test_ui reuse it.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from reports import schema
from reports.report import build_report
from reports.runs import parse_param, read_sweep_runs
from resnetx.errors import ConfigError
from sweep.cli import main as cli_main
from sweep.config.overrides import flatten
from sweep.config.paths import sqlite_uri
from sweep.tracking.store import RunLogger, prepare_store

# name, model overrides, seed, weights, status, final val_acc (None: no metrics at all)
TRIALS: list[tuple[str, dict[str, Any], int, str | None, str, float | None]] = [
    ("t0", {"fold": 1}, 0, None, schema.STATUS_FINISHED, 0.90),
    ("t1", {"fold": 2}, 0, None, schema.STATUS_FINISHED, 0.93),
    ("t2", {"fold": 3}, 0, None, schema.STATUS_FINISHED, 0.91),
    ("t3", {"fold": 1, "base": 8, "stem_width": 8}, 0, None, schema.STATUS_FINISHED, 0.85),
    ("t4", {"fold": 2, "stem_width": 18}, 1, "imagenet", schema.STATUS_FINISHED, 0.95),
    ("t5", {"fold": 1}, 1, None, schema.STATUS_STOPPED, 0.88),
    ("t6", {"fold": 2}, 0, None, schema.STATUS_FINISHED, 0.93),  # same config as t1: a tie on the front
    ("t7", {"fold": 3, "base": 8, "stem_width": 8}, 1, None, schema.STATUS_DIVERGED, math.nan),
    ("t8", {"fold": 2, "base": 8}, 1, None, schema.STATUS_FAILED, None),
    ("t9", {"fold": 3, "unit": "preact_basic"}, 0, None, schema.STATUS_FAILED, None),
]
RANKABLE = [t[0] for t in TRIALS if t[4] in schema.RANKABLE_STATUSES]
UNRANKABLE = [t[0] for t in TRIALS if t[4] not in schema.RANKABLE_STATUSES]


def experiment_config(model_overrides: dict[str, Any], seed: int, weights: str | None) -> dict[str, Any]:
    """A full, validated experiment config as a sweep logs it (channels and classes from the dataset)."""
    from resnetx import builtin_config
    from sweep.config.experiment import ExperimentConfig

    model = builtin_config("tiny").replace(**model_overrides).to_dict()
    model.pop("in_channels"), model.pop("num_classes")
    raw = {"model": model, "data": {"name": "digits"}, "train": {"epochs": 1, "seed": seed, "weights": weights}}
    return ExperimentConfig(**raw).to_dict()


def _log_trial(uri: str, experiment_id: str, parent_id: str, name: str, config: dict[str, Any], status: str,
               acc: float | None, params: int | None) -> str:
    from resnetx import ResNetXConfig

    model_hash = ResNetXConfig(**config["model"]).canonical_hash()
    config_hash = f"c-{model_hash}-{config['train']['weights']}"
    run = RunLogger.start(uri, experiment_id, name=name, parent_run_id=parent_id, tags={
        schema.TAG_ROLE: schema.ROLE_TRIAL, schema.TAG_TRIAL_ID: f"trial_{name}", schema.TAG_STATUS: status,
        schema.TAG_CONFIG_HASH: config_hash, schema.TAG_MODEL_HASH: model_hash, schema.TAG_SPACE: "quick",
        schema.TAG_SEARCH: "optuna", schema.TAG_DATASET: "digits"})
    run.log_params(flatten(config))
    if acc is not None:
        for epoch, value in ((1, acc - 0.05), (2, acc)):
            run.log_metrics({"val_acc": value, "val_loss": 1.0 - value, "train_loss": 1.1 - value, "lr": 0.1 / epoch,
                             "epoch_time_s": 1.5, "images_per_s": 900.0}, step=epoch)
    if params is not None:
        final = {"params": params, "flops": params * 40, "latency_ms": params / 1e5}
        if acc is not None:
            final.update({"best_val_acc": acc, "test_acc": acc - 0.01, "train_time_s": 3.0})
        run.log_metrics(final, step=0)
    run.log_text(yaml.safe_dump(config, sort_keys=False), schema.CONFIG_ARTIFACT)
    run.end("FAILED" if status in (schema.STATUS_FAILED, schema.STATUS_DIVERGED) else "FINISHED")
    return run.run_id


def build_store(folder: Path) -> dict[str, Any]:
    """A sqlite store with two sweeps (the second is the latest) and a train-only experiment."""
    from resnetx import count_params

    folder.mkdir(parents=True, exist_ok=True)
    uri = sqlite_uri(folder)
    experiment_id = prepare_store(uri, "resnetx")
    sweep_tags = {schema.TAG_ROLE: schema.ROLE_SWEEP, schema.TAG_SPACE: "quick", schema.TAG_SEARCH: "optuna",
                  schema.TAG_OBJECTIVES: "val_acc:max,params:min", schema.TAG_SWEEP_SEED: "0"}
    old = RunLogger.start(uri, experiment_id, name="old-sweep", tags=sweep_tags)
    old_children = [_log_trial(uri, experiment_id, old.run_id, f"old{i}", experiment_config({"fold": 1}, i, None),
                               schema.STATUS_FINISHED, 0.5 + i / 10, 175258) for i in range(2)]
    old.end()
    parent = RunLogger.start(uri, experiment_id, name="quick-sweep", tags=sweep_tags)
    parent.log_params({"num_samples": len(TRIALS), "max_concurrent": 2})
    runs, params, configs = {}, {}, {}
    for name, overrides, seed, weights, status, acc in TRIALS:
        config = experiment_config(overrides, seed, weights)
        count = count_params(config_model(config)) if status != schema.STATUS_FAILED else None
        runs[name] = _log_trial(uri, experiment_id, parent.run_id, name, config, status, acc, count)
        params[name], configs[name] = count, config
    parent.end()
    solo_id = prepare_store(uri, "solo")
    solo = {}
    for i, acc in enumerate((0.8, 0.7)):
        config = experiment_config({"fold": 1 + i}, 0, None)
        run = RunLogger.start(uri, solo_id, name=f"train{i}", tags={schema.TAG_ROLE: schema.ROLE_TRAIN})
        run.log_params(flatten(config))
        run.log_metrics({"val_acc": acc, "params": count_params(config_model(config))})
        run.log_text(yaml.safe_dump(config), schema.CONFIG_ARTIFACT)
        run.end()
        solo[f"train{i}"] = run.run_id
    empty_id = prepare_store(uri, "nothing-finished")  # a sweep whose every trial failed or still runs
    empty = RunLogger.start(uri, empty_id, name="bad-sweep", tags=sweep_tags)
    for name, status in (("f0", schema.STATUS_FAILED), ("f1", schema.STATUS_RUNNING)):
        _log_trial(uri, empty_id, empty.run_id, name, experiment_config({"fold": 1}, 0, None), status, None, None)
    empty.end()
    return {"folder": folder, "uri": uri, "experiment_id": experiment_id, "parent": parent.run_id,
            "old_parent": old.run_id, "old_children": old_children, "runs": runs, "params": params,
            "configs": configs, "solo": solo}


def config_model(config: dict[str, Any]):
    from resnetx import ResNetXConfig

    return ResNetXConfig(**config["model"])


_SHARED: dict[str, Any] = {}


def shared_store(tmp_path_factory) -> dict[str, Any]:
    """One store per test session: creating an MLflow sqlite store runs its ~8 s of migrations.

    Tests that change tags put them back (the default report), so the sharing is safe.
    """
    if not _SHARED:
        _SHARED.update(build_store(tmp_path_factory.mktemp("store") / "runs"))
    return _SHARED


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Any]:
    return shared_store(tmp_path_factory)


# -- reading ------------------------------------------------------------------------------


def test_parse_param_types_values_back():
    assert parse_param("2") == 2 and parse_param("-3") == -3
    assert parse_param("0.1") == 0.1 and parse_param("1e-05") == 1e-05
    assert parse_param("True") is True and parse_param("false") is False
    assert parse_param("null") is None and parse_param("None") is None
    assert parse_param("[2, 2, 2]") == [2, 2, 2]
    assert parse_param("basic") == "basic" and parse_param("yes") == "yes" and parse_param("[oops") == "[oops"


def test_read_sweep_runs_takes_the_latest_sweep_with_typed_params(store):
    sweep = read_sweep_runs(store["uri"], "resnetx")
    assert sweep.kind == "sweep" and sweep.sweep_run_id == store["parent"]
    assert sweep.objectives_tag == "val_acc:max,params:min"
    assert sweep.parent.params["num_samples"] == len(TRIALS)
    frame = sweep.trials
    assert list(frame["run_name"]) == [t[0] for t in TRIALS]  # start order
    assert set(frame["run_id"]) == set(store["runs"].values())
    row = frame.set_index("run_name").loc["t4"]
    assert row["model.fold"] == 2 and isinstance(row["model.fold"], (int, np.integer))
    assert row["model.num_nodes"] == [2, 2, 2] and row["model.exp"] == 2.0
    assert isinstance(row["model.first_downsample"], (bool, np.bool_))
    assert row["train.weights"] == "imagenet" and pd.isna(frame.set_index("run_name").loc["t0", "train.weights"])
    assert row["status"] == "finished" and row["dataset"] == "digits" and row["trial_id"] == "trial_t4"
    assert row["params"] == store["params"]["t4"] and row["val_acc"] == pytest.approx(0.95)  # latest epoch
    assert math.isnan(frame.set_index("run_name").loc["t7", "val_acc"])
    assert isinstance(row["start_time"], pd.Timestamp)
    # durations: MLflow's own start and end of each run, in milliseconds, read past reports.runs
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store["uri"])
    for run_id, duration in zip(frame["run_id"], frame["duration_s"]):
        info = client.get_run(run_id).info
        assert duration == pytest.approx((info.end_time - info.start_time) / 1000, abs=1e-6)
    # what _log_trial logs: per-epoch and final metrics are metrics, the flattened config is params
    assert set(sweep.metric_columns) == {"val_acc", "val_loss", "train_loss", "lr", "epoch_time_s", "images_per_s",
                                         "params", "flops", "latency_ms", "best_val_acc", "test_acc", "train_time_s"}
    assert {"model.fold", "train.lr", "train.seed"} <= set(sweep.param_columns)
    assert not set(sweep.param_columns) & set(sweep.metric_columns)
    older = read_sweep_runs(store["uri"], "resnetx", store["old_parent"])
    assert sorted(older.trials["run_id"]) == sorted(store["old_children"])


def test_read_sweep_runs_errors_are_one_line(store, tmp_path):
    with pytest.raises(ConfigError, match=r"--experiment: got 'nope'.*known: Default, nothing-finished, resnetx, solo"):
        read_sweep_runs(store["uri"], "nope")
    with pytest.raises(ConfigError, match="--sweep"):
        read_sweep_runs(store["uri"], "resnetx", store["runs"]["t0"])  # a trial, not a sweep
    with pytest.raises(ConfigError, match="--sweep"):
        read_sweep_runs(store["uri"], "resnetx", "0" * 32)
    with pytest.raises(ConfigError, match="no MLflow store"):
        read_sweep_runs(sqlite_uri(tmp_path / "empty"), "resnetx")
    assert not (tmp_path / "empty" / "mlflow.db").exists()  # reading never creates a store


def test_train_runs_are_reported_when_no_sweep_exists(store, tmp_path):
    result = build_report(store["uri"], "solo", tmp_path / "solo", log_to_mlflow=True)
    assert result.sweep.kind == "train" and result.logged_to is None
    assert list(result.front["run_name"]) == ["train0"]  # more accurate with fewer parameters than train1
    # by hand: train0 (0.8, fold 1: 174,970 params) dominates train1 (0.7, fold 2: 177,722 params)
    ranked = result.analysis.ranked
    assert dict(zip(ranked["run_name"], ranked["pareto_rank"])) == {"train0": 0, "train1": 1}


# -- the report ---------------------------------------------------------------------------


def _tags(uri: str, run_id: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_run(run_id).data.tags


def expected_front(store) -> set[str]:
    """Brute force: rankable trials no other rankable trial dominates on (val_acc max, params min)."""
    pts = {n: (acc, store["params"][n]) for n, *_, acc in TRIALS if n in RANKABLE}

    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and a != b

    return {n for n, p in pts.items() if not any(dominates(q, p) for q in pts.values())}


def test_build_report_writes_files_tags_and_artifacts(store, tmp_path):
    out = tmp_path / "report"
    result = build_report(store["uri"], "resnetx", out)
    files = result.files
    for key in ("pareto_csv", "failed_csv", "report_md", "index_html", "plots_html", "pareto_png",
                "hypervolume_png", "fold_ablation_png"):
        assert files[key].is_file() and files[key].stat().st_size > 0, key
        assert files[key].parent == out
    assert [str(o) for o in result.objectives] == ["val_acc:max", "params:min"]  # from the parent's tag

    pareto = pd.read_csv(files["pareto_csv"])
    failed = pd.read_csv(files["failed_csv"])
    assert sorted(pareto["run_name"]) == sorted(RANKABLE) and sorted(failed["run_name"]) == sorted(UNRANKABLE)
    assert {"pareto_rank", "on_front", "val_acc", "params", "model.fold", "config_hash"} <= set(pareto.columns)
    # by hand, (val_acc, params): t3 (0.85, 44,226), t0 (0.90, 174,970), t2 (0.91, 176,698), t1 = t6
    # (0.93, 177,722), t4 (0.95, 178,672): each more accurate than every smaller one, so all on rank 0
    assert dict(zip(pareto["run_name"], pareto["pareto_rank"])) == {n: 0 for n in ("t0", "t1", "t2", "t3", "t4", "t6")}
    front = set(pareto.loc[pareto["on_front"], "run_name"])
    assert front == expected_front(store) and {"t1", "t6"} <= front  # equal points share rank 0
    assert set(result.front["run_name"]) == front
    assert result.knee_run_id in set(result.front["run_id"])
    assert result.hypervolume > 0 and len(result.reference) == 2
    assert result.reference[0] < 0.85 and result.reference[1] > max(p for p in store["params"].values() if p)

    # tags in MLflow: every child has on_front, ranked ones a rank; unrankable never on the front
    for name, run_id in store["runs"].items():
        tags = _tags(store["uri"], run_id)
        assert tags[schema.TAG_ON_FRONT] == ("true" if name in front else "false")
        if name in RANKABLE:
            assert tags[schema.TAG_PARETO_RANK] == str(int(pareto.set_index("run_name").loc[name, "pareto_rank"]))
        else:
            assert schema.TAG_PARETO_RANK not in tags
    # the report files are artifacts of the parent run under report/
    from mlflow.tracking import MlflowClient

    logged = {Path(f.path).name for f in MlflowClient(store["uri"]).list_artifacts(store["parent"], "report")}
    assert {"index.html", "report.md", "pareto.csv", "failed.csv", "pareto.png", "plots.html"} <= logged
    assert result.logged_to == store["parent"] and result.tagged_runs == len(TRIALS)

    # the UI filter users are told about finds exactly the front
    found = MlflowClient(store["uri"]).search_runs([store["experiment_id"]], "tags.on_front = 'true'")
    assert {r.info.run_name for r in found} == front


def test_report_pages_are_self_contained(store, tmp_path):
    result = build_report(store["uri"], "resnetx", tmp_path / "r", log_to_mlflow=False, budgets=[5e4, 2e5])
    index = result.files["index_html"].read_text()
    assert index.count("data:image/png;base64,") == 3
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", index)  # nothing loaded from the network
    assert "Knee point" in index and "Hypervolume" in index and store["parent"] in index
    plots = result.files["plots_html"].read_text()
    # plotly.js is inlined (its source only names a CDN as the default topojson URL for maps)
    assert "* plotly.js v" in plots and not re.search(r"""<script[^>]*\bsrc=""", plots)
    md = result.files["report_md"].read_text()
    # the two renderings list the same sections in the same order (they were listed by hand twice)
    md_sections = re.findall(r"^## (.+)$", md, flags=re.MULTILINE)
    html_sections = re.findall(r"<h2>(.+?)</h2>(?!<img)", index)  # a plot's heading is not a section
    assert [html.unescape(h) for h in html_sections] == md_sections
    assert "Fold ablation" in md_sections and md_sections[-1] == "Provenance"
    for needle in ("## Pareto front", "**Knee point**", "reference point",
                   "## Best network under each parameter budget", "## Fold ablation", "space", "quick", "optuna",
                   "sweep_seed", "version mlflow", store["parent"]):
        assert needle in md, needle
    budgets = result.analysis.budgets
    assert list(budgets["budget"]) == [5e4, 2e5]
    small = budgets.iloc[0]
    assert small["run_name"] == "t3"  # the only network under 50k parameters
    assert budgets.iloc[1]["run_name"] == "t4"  # the most accurate overall
    assert result.tagged_runs == 0 and result.logged_to is None


def test_fold_ablation_splits_scratch_and_warm(store, tmp_path):
    result = build_report(store["uri"], "resnetx", tmp_path / "r", log_to_mlflow=False)
    table = result.analysis.ablation
    scratch = table[table["start"] == "from scratch"].set_index("model.fold")
    # finished trials only (t5 stopped early): fold 1 from scratch: t0 (val 0.90), t3 (0.85); fold 2: t1, t6
    # (0.93 each). The final numbers are test accuracy (val - 0.01 in this store), val_acc shown beside.
    assert table.attrs["metric"] == "test_acc"
    assert scratch.loc[1, "n"] == 2 and scratch.loc[1, "mean"] == pytest.approx((0.89 + 0.84) / 2)
    assert scratch.loc[1, "val_acc mean"] == pytest.approx((0.90 + 0.85) / 2)
    assert scratch.loc[1, "spread over"] == "pooled: model.base, model.stem_width"  # t3 is a narrower network
    # t1 and t6 are one config with one seed (0): one network measured twice, so one value, not two seeds
    assert scratch.loc[2, "n"] == 1 and scratch.loc[2, "repeats collapsed"] == 1
    assert scratch.loc[2, "mean"] == pytest.approx(0.92) and math.isnan(scratch.loc[2, "std"])
    assert scratch.loc[2, "spread over"] == "seeds" and scratch.loc[1, "repeats collapsed"] == 0
    assert scratch.loc[2, "diff vs fold 1"] == pytest.approx(0.92 - 0.865)
    # one value has no spread of its own: no interval (Welch's by hand is in tests/test_ablation.py)
    assert math.isnan(scratch.loc[2, "95% CI low"]) and math.isnan(scratch.loc[2, "95% CI high"])
    assert scratch.loc[2, "pairing"] == "unpaired"  # from scratch: nothing shared with fold 1
    warm = table[table["start"] == "warm-started"]
    assert list(warm["model.fold"]) == [2] and warm["mean"].iloc[0] == pytest.approx(0.94)


def test_stopped_trials_are_shown_apart_and_ranked_only_at_a_common_epoch(store, tmp_path):
    result = build_report(store["uri"], "resnetx", tmp_path / "s", log_to_mlflow=False)
    assert "t5" not in set(result.analysis.ranked["run_name"])  # stopped early: not beside finished trials
    assert list(result.analysis.stopped["run_name"]) == ["t5"]
    text = result.files["report_md"].read_text()
    assert "## Stopped early (not ranked: fewer epochs)" in text and "--at-epoch common" in text
    at1 = build_report(store["uri"], "resnetx", tmp_path / "s1", log_to_mlflow=False, at_epoch=1)
    ranked = at1.analysis.ranked.set_index("run_name")
    assert "t5" in ranked.index and at1.analysis.at_epoch == 1
    assert ranked.loc["t5", "val_acc"] == pytest.approx(0.88 - 0.05)  # its value at epoch 1, not its last
    assert ranked.loc["t0", "val_acc"] == pytest.approx(0.90 - 0.05)
    # by hand at epoch 1 (val_acc = final - 0.05): t5 (0.83, 174,970) is dominated by t0 (0.85, 174,970)
    # only; every other trial is more accurate than each smaller one
    assert ranked["pareto_rank"].to_dict() == {"t0": 0, "t1": 0, "t2": 0, "t3": 0, "t4": 0, "t5": 1, "t6": 0}
    common = build_report(store["uri"], "resnetx", tmp_path / "s2", log_to_mlflow=False, at_epoch="common")
    assert common.analysis.at_epoch == 2
    with pytest.raises(ConfigError, match=r"^--at-epoch: got 'soon'"):
        build_report(store["uri"], "resnetx", tmp_path / "s3", log_to_mlflow=False, at_epoch="soon")
    # every trial of the store logged epochs 1 and 2: 99 is an error naming the longest
    with pytest.raises(ConfigError, match=r"^--at-epoch: got 99; no trial reached it; the longest trained 2 epoch"):
        build_report(store["uri"], "resnetx", tmp_path / "s4", log_to_mlflow=False, at_epoch=99)


def test_report_with_three_objectives_and_changed_tags(store, tmp_path):
    result = build_report(store["uri"], "resnetx", tmp_path / "r3", objectives="val_acc:max,params:min,latency_ms:min",
                          log_to_mlflow=False)
    assert len(result.reference) == 3
    # latency is proportional to params here, so the front is the same as with two objectives
    assert set(result.front["run_name"]) == expected_front(store)
    # accuracy alone: only t4 is on the front; tags follow the latest report
    single = build_report(store["uri"], "resnetx", tmp_path / "r1", objectives="val_acc:max")
    assert list(single.front["run_name"]) == ["t4"]
    assert _tags(store["uri"], store["runs"]["t1"])[schema.TAG_ON_FRONT] == "false"
    build_report(store["uri"], "resnetx", tmp_path / "r2")  # restore the default front for later tests


def test_bad_objectives_are_one_line_errors(store, tmp_path):
    with pytest.raises(ConfigError, match=r"--objectives: got 'accuracy'.*metrics: best_val_acc"):
        build_report(store["uri"], "resnetx", tmp_path, objectives="accuracy:max", log_to_mlflow=False)
    with pytest.raises(ConfigError, match="--objectives"):
        build_report(store["uri"], "resnetx", tmp_path, objectives="val_acc:up", log_to_mlflow=False)


# -- the command --------------------------------------------------------------------------


def test_report_command(store, capsys):
    code = cli_main(["report", "--runs-dir", str(store["folder"]), "--budgets", "5e4,2e5"])
    out = capsys.readouterr().out
    assert code == 0
    default_out = store["folder"] / "reports" / store["parent"]
    assert (default_out / "index.html").is_file() and str(default_out / "index.html") in out.replace("\n", "")
    for name in expected_front(store):
        assert name in out
    assert "knee" in out.lower() and "hypervolume" in out.lower()


def test_report_command_user_errors(store, tmp_path, capsys):
    assert cli_main(["report", "--runs-dir", str(store["folder"]), "--objectives", "val_acc"]) == 2
    assert cli_main(["report", "--runs-dir", str(store["folder"]), "--budgets", "lots"]) == 2
    assert cli_main(["report", "--runs-dir", str(tmp_path / "nothing")]) == 2
    assert cli_main(["report", "--runs-dir", str(store["folder"]), "--sweep", "abc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("resnetx: error:") for line in err)



def test_default_budgets_are_log_spaced_and_admit_the_smallest_network():
    from reports.analysis import default_budgets

    assert default_budgets(pd.Series([44_370.0, 175_258.0, 178_042.0, math.nan])) == [45_000, 71_000, 120_000,
                                                                                       180_000]
    assert default_budgets(pd.Series([1000.0])) == [1000.0]
    assert default_budgets(pd.Series([math.nan])) == []


def test_report_of_a_sweep_without_any_finished_trial(store, tmp_path):
    result = build_report(store["uri"], "nothing-finished", tmp_path / "r")
    assert result.front.empty and result.knee_run_id is None and result.reference is None
    assert result.hypervolume == 0.0 and "pareto_png" not in result.files
    assert sorted(pd.read_csv(result.files["failed_csv"])["run_name"]) == ["f0", "f1"]
    assert "no front" in result.files["report_md"].read_text()
    assert result.files["index_html"].is_file()
    with pytest.raises(ConfigError, match="matches no finished trial"):
        from reports.export import Selection, export_configs

        export_configs(store["uri"], "nothing-finished", tmp_path / "x", Selection(front=True))
