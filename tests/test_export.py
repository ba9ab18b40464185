"""`resnetx export` on a real MLflow store, and `resnetx show` rebuilding what it wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reports import schema
from reports.export import Selection, export_configs
from resnetx.errors import ConfigError
from sweep.cli import main as cli_main
from sweep.config.experiment import ExperimentConfig

try:
    from test_reports import TRIALS, expected_front, shared_store
except ImportError:  # tests imported as a package
    from tests.test_reports import TRIALS, expected_front, shared_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Any]:
    return shared_store(tmp_path_factory)


def _export(store, out: Path, *args: str) -> list[dict[str, Any]]:
    assert cli_main(["export", "--runs-dir", str(store["folder"]), "--out", str(out), *args]) == 0
    return [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]


def test_export_front_then_show_rebuilds_the_logged_parameter_count(store, tmp_path, capsys):
    docs = _export(store, tmp_path / "front", "--front")
    names = {d["provenance"]["mlflow_run_name"] for d in docs}
    front = expected_front(store)
    # t1 and t6 are the same config (same config hash): exported once
    assert names | {"t6"} == front | {"t1"} and len(docs) == len(front) - 1
    assert not list((tmp_path / "front").glob(".*"))  # no temp files left behind
    for path in sorted((tmp_path / "front").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        name = doc["provenance"]["mlflow_run_name"]
        # the full experiment config as logged, plus provenance
        assert {k: v for k, v in doc.items() if k != "provenance"} == store["configs"][name]
        ExperimentConfig(**doc)  # what `resnetx train FILE` validates (provenance ignored)
        prov = doc["provenance"]
        assert prov["mlflow_run_id"] == store["runs"][name] and prov["sweep_run_id"] == store["parent"]
        assert prov["experiment"] == "resnetx" and prov["tracking_uri"] == store["uri"]
        assert prov["config_hash"] and prov["model_hash"] and prov["dataset"] == "digits"
        assert prov["metrics"]["params"] == store["params"][name] and "val_acc" in prov["metrics"]
        assert set(prov["package_versions"]) >= {"torch", "torchvision", "ray", "mlflow", "optuna", "resnetx-sweeps"}
        assert prov["exported_at"].endswith("+00:00") and prov["pareto_rank"] == 0
        capsys.readouterr()
        assert cli_main(["show", str(path), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["params"] == store["params"][name]  # exactly the logged count
        assert shown["config_hash"] == prov["model_hash"]


def test_export_top_k_by_metric(store, tmp_path):
    docs = _export(store, tmp_path / "top", "--top", "2", "--by", "val_acc")
    assert [d["provenance"]["mlflow_run_name"] for d in docs] == ["t4", "t1"]  # t6 duplicates t1
    docs = _export(store, tmp_path / "small", "--top", "1", "--by", "params")  # params: smaller is better
    assert [d["provenance"]["mlflow_run_name"] for d in docs] == ["t3"]
    docs = _export(store, tmp_path / "worst", "--top", "1", "--by", "val_acc:min")
    assert [d["provenance"]["mlflow_run_name"] for d in docs] == ["t3"]


def test_export_max_params(store, tmp_path):
    # alone: the most accurate network within the budget
    assert [d["provenance"]["mlflow_run_name"] for d in _export(store, tmp_path / "a", "--max-params", "176000")] \
        == ["t0"]
    # with --front: the front members within the budget
    docs = _export(store, tmp_path / "b", "--front", "--max-params", "176000")
    assert {d["provenance"]["mlflow_run_name"] for d in docs} == {"t0", "t3"}


def test_export_never_picks_failed_trials(store, tmp_path):
    failed = {n for n, *_, status, _ in TRIALS if status not in schema.RANKABLE_STATUSES}
    docs = _export(store, tmp_path / "all", "--top", "100", "--by", "params")
    assert not failed & {d["provenance"]["mlflow_run_name"] for d in docs}


def test_export_user_errors_write_nothing(store, tmp_path, capsys):
    out = tmp_path / "none"
    base = ["export", "--runs-dir", str(store["folder"]), "--out", str(out)]
    assert cli_main(base) == 2  # no selection
    assert cli_main([*base, "--top", "2"]) == 2  # --top without --by
    assert cli_main([*base, "--top", "2", "--by", "accuracy"]) == 2
    assert cli_main([*base, "--max-params", "10"]) == 2  # nothing that small
    assert cli_main([*base, "--front", "--by", "val_acc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("resnetx: error:") for line in err)
    assert not out.exists()


def test_invalid_config_artifact_aborts_the_whole_export(store, tmp_path):
    """One broken trial among the chosen: an error naming the run, and not a single file written."""
    from mlflow.tracking import MlflowClient

    broken = store["runs"]["t4"]
    client = MlflowClient(store["uri"])
    good = yaml.safe_dump(store["configs"]["t4"], sort_keys=False)
    bad = yaml.safe_dump({**store["configs"]["t4"], "model": {**store["configs"]["t4"]["model"], "fold": 0}})
    client.log_text(broken, bad, schema.CONFIG_ARTIFACT)
    try:
        with pytest.raises(ConfigError, match=broken):
            export_configs(store["uri"], "resnetx", tmp_path / "x", Selection(front=True))
        assert not (tmp_path / "x").exists()
    finally:
        client.log_text(broken, good, schema.CONFIG_ARTIFACT)


def test_export_names_the_sweep_it_took(store, tmp_path, capsys):
    """The default sweep is load_sweep's choice: the first line names it, so an export is never a guess."""
    capsys.readouterr()
    base = ["export", "--runs-dir", str(store["folder"]), "--top", "1", "--by", "val_acc"]
    assert cli_main([*base, "--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"exporting from sweep quick-sweep (run {store['parent']}, {len(TRIALS)} trials")
    assert cli_main([*base, "--out", str(tmp_path / "b"), "--sweep", store["old_parent"]]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"exporting from sweep old-sweep (run {store['old_parent']}, 2 trials")
    assert cli_main([*base, "--out", str(tmp_path / "c"), "--experiment", "solo"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("exporting from train runs of experiment 'solo'")


def test_with_weights_but_no_checkpoints_still_exports_every_config(store, tmp_path, capsys):
    """This store was written without Tune (no tune_path tag): one line per trial, configs still written."""
    capsys.readouterr()
    out = tmp_path / "w"
    assert cli_main(["export", "--runs-dir", str(store["folder"]), "--out", str(out), "--front", "--with-weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [line for line in lines if line.startswith("no weights for run ")]
    written = sorted(out.glob("*.yaml"))
    assert len(notes) == len(written) == len(expected_front(store)) - 1
    assert all("a sweep without a tune_path tag" in n and n.endswith("exported its config only") for n in notes)
    assert not list(out.glob("*.pt"))
    assert all("weights" not in yaml.safe_load(p.read_text())["provenance"] for p in written)
    assert cli_main(["export", "--runs-dir", str(store["folder"]), "--out", str(tmp_path / "s"), "--top", "1",
                     "--by", "val_acc", "--experiment", "solo", "--with-weights"]) == 0
    assert "it is a `resnetx train` run: no Tune checkpoint" in capsys.readouterr().out


def test_a_second_export_into_the_folder_replaces_the_first_and_leaves_other_files(store, tmp_path):
    """The earlier export's files stayed (their names carry other run ids): a folder of mixed sets."""
    out = tmp_path / "again"
    assert len(_export(store, out, "--top", "2", "--by", "val_acc")) == 2
    (out / "notes.txt").write_text("mine")
    docs = _export(store, out, "--top", "1", "--by", "params")
    assert [d["provenance"]["mlflow_run_name"] for d in docs] == ["t3"]
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".yaml")) == ["notes.txt"]


def test_a_rename_that_fails_half_way_leaves_the_earlier_export_as_it_was(store, tmp_path, monkeypatch):
    """One rename at a time: a failure after the first left a partial, mixed set (review of 7bd5730)."""
    import reports.export as export_module

    out = tmp_path / "partial"
    _export(store, out, "--top", "2", "--by", "val_acc")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace, calls = export_module.os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(export_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        export_configs(store["uri"], "resnetx", out, Selection(top=3, by="params"))
    monkeypatch.setattr(export_module.os, "replace", real_replace)
    assert len(calls) >= 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # same names, same bytes, no temps


def test_repeat_seeds_of_one_network_collapse_to_its_best():
    """A replicated space tags each trial ``<hash>-seed<N>``: replicates were exported one file each."""
    import pandas as pd

    from reports.analysis import RANK
    from reports.export import select
    from reports.pareto import parse_objectives

    ranked = pd.DataFrame({"run_id": ["r1", "r2", "r3", "r4"], RANK: [0, 0, 0, 1],
                           schema.TAG_CONFIG_HASH: ["aaa-seed1", "aaa-seed2", "bbb-seed1", "ccc"],
                           "val_acc": [0.90, 0.92, 0.80, 0.70], "params": [10, 10, 5, 20]})
    chosen = select(ranked, Selection(top=5, by="val_acc"), parse_objectives("val_acc:max,params:min"))
    assert list(chosen["run_id"]) == ["r2", "r3", "r4"]  # aaa's best seed, then bbb, then ccc


def test_a_store_error_is_not_relabelled_as_a_missing_config(tmp_path):
    """Any exception (an HTTP 5xx, an auth error) became "has no readable config.yaml" (reports/export.py:155)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from reports.export import read_config_artifact

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(uri)
    missing = client.create_run(client.create_experiment("plain", artifact_location=str(tmp_path / "art")))
    with pytest.raises(ConfigError, match=r"has no readable config\.yaml"):
        read_config_artifact(uri, missing.info.run_id)  # really not there: the one-line error
    broken = client.create_run(client.create_experiment("broken", artifact_location="unknownscheme://bucket/x"))
    with pytest.raises(MlflowException, match="artifact repository"):
        read_config_artifact(uri, broken.info.run_id)  # the store's own error, as it is
