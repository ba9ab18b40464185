"""``resnetx sweep --confirm`` / ``resnetx confirm`` end to end on the embedded default: a real
search sweep on digits, its front retrained with the space's final recipe (test split evaluated)
and two seeds as Ray trials under a parent run of their own, the confirmed front in the report,
and ``export --front`` taking it, weights included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from reports import schema
from sweep.cli.main import main
from tests.sweep_helpers import all_runs, client_for, split_runs

FAST = ["--set", "data.subset=300"]


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory) -> dict[str, Any]:
    runs_dir = tmp_path_factory.mktemp("confirm") / "runs"
    rc = main(["sweep", "--runs-dir", str(runs_dir), "--num-samples", "4", "--max-concurrent", "2", "--seed", "3",
               "--set", "train.epochs=1", *FAST, "--confirm", "--max-concurrent", "2"])
    assert rc == 0
    rc = main(["confirm", "--runs-dir", str(runs_dir), "--seeds", "2", "--candidates", "top-2", "--set",
               "train.epochs=2", "--name", "confirm-top2"])
    assert rc == 0
    client = client_for(runs_dir)
    parents, children = split_runs(all_runs(client))
    return {"runs_dir": runs_dir, "client": client, "parents": parents, "children": children}


def _stage(parents: list, name: str | None = None) -> list:
    return [p for p in parents if p.data.tags.get(schema.TAG_STAGE) == schema.STAGE_CONFIRM
            and (name is None or p.info.run_name == name)]


def test_confirm_runs_are_recorded_as_their_own_stage(confirmed):
    parents, children = confirmed["parents"], confirmed["children"]
    search = [p for p in parents if schema.TAG_STAGE not in p.data.tags]
    assert len(search) == 1 and len(_stage(parents)) == 2
    search_id = search[0].info.run_id
    for stage in _stage(parents):
        assert stage.data.tags[schema.TAG_CONFIRM_OF] == search_id and stage.info.status == "FINISHED"
    top2 = _stage(parents, "confirm-top2")[0]
    mine = [c for c in children if c.data.tags.get(schema.TAG_PARENT) == top2.info.run_id]
    assert len(mine) == 4  # 2 candidates x 2 seeds
    assert all(c.data.tags[schema.TAG_STAGE] == schema.STAGE_CONFIRM for c in mine)
    assert all(c.info.status == "FINISHED" and "test_acc" in c.data.metrics for c in mine)
    assert {c.data.params["train.epochs"] for c in mine} == {"2"}  # --set over the final recipe (8)
    assert {c.data.params["train.evaluate_test"] for c in mine} == {"True"}  # the final recipe
    per_network: dict[str, set] = {}
    for c in mine:
        per_network.setdefault(c.data.tags[schema.TAG_MODEL_HASH], set()).add(c.data.params["train.seed"])
    assert len(per_network) == 2 and all(len(seeds) == 2 for seeds in per_network.values())
    searched = {c.data.tags[schema.TAG_MODEL_HASH] for c in children
                if c.data.tags.get(schema.TAG_PARENT) == search_id}
    assert set(per_network) <= searched


def test_sweep_confirm_retrains_the_search_front_with_the_space_recipe(confirmed):
    from reports.frames import load_sweep, pareto_front

    search = next(p for p in confirmed["parents"] if schema.TAG_STAGE not in p.data.tags)
    front = pareto_front(load_sweep(confirmed["runs_dir"], sweep=search.info.run_id))
    first = next(p for p in _stage(confirmed["parents"]) if p.info.run_name != "confirm-top2")
    stage = load_sweep(confirmed["runs_dir"], sweep=first.info.run_id)
    assert set(stage["stage"]) == {schema.STAGE_CONFIRM}
    assert set(stage[schema.TAG_MODEL_HASH]) == set(front[schema.TAG_MODEL_HASH])
    assert len(stage) == 3 * len(front)  # quick.yaml: confirm.seeds 3
    assert set(stage["train.epochs"]) == {8}  # quick.yaml's final recipe


def test_report_has_the_confirmed_front_and_its_resampling_shares(confirmed):
    top2 = _stage(confirmed["parents"], "confirm-top2")[0]
    folder = Path(confirmed["runs_dir"]) / "reports" / top2.info.run_id
    text = (folder / "report.md").read_text()
    assert "## Confirmed front" in text and "of resamples" in text and "Search-stage front:" in text
    recipe = next(line for line in text.splitlines() if line.startswith("Final recipe: "))
    # what the stage changed: quick.yaml's final evaluate_test, and --set train.epochs=2 (search: 1)
    assert "train.epochs=2" in recipe and "train.evaluate_test=True" in recipe
    assert "train.batch_size" not in recipe and "model." not in recipe  # the same in both stages
    table = pd.read_csv(folder / "confirmed.csv")
    assert len(table) == 2 and (table["seeds"] == 2).all()
    assert table["front_share"].between(0, 1).all() and table["on_front"].any()
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()


def test_export_front_takes_the_confirmed_front_with_weights(confirmed, tmp_path, capsys):
    out = tmp_path / "export"
    rc = main(["export", "--runs-dir", str(confirmed["runs_dir"]), "--out", str(out), "--front", "--with-weights"])
    assert rc == 0, capsys.readouterr()
    table = pd.read_csv(Path(confirmed["runs_dir"]) / "reports" /
                        _stage(confirmed["parents"], "confirm-top2")[0].info.run_id / "confirmed.csv")
    files = sorted(out.glob("*.yaml"))
    assert len(files) == int(table["on_front"].sum())
    for path in files:
        provenance = yaml.safe_load(path.read_text())["provenance"]
        confirmed_prov = provenance["confirmed"]
        row = table[table[schema.TAG_MODEL_HASH] == provenance["model_hash"]].iloc[0]
        assert confirmed_prov["mean"] == pytest.approx(row["mean"]) and confirmed_prov["seeds"] == 2
        assert provenance["mlflow_run_id"] in confirmed_prov["run_ids"]
        assert path.with_suffix(".pt").is_file() and provenance["weights"]["file"] == path.with_suffix(".pt").name


def test_a_confirm_stage_resumes_with_the_same_points(confirmed):
    from sweep.config.settings import SweepSettings
    from sweep.tune.runner import plan_sweep, recorded_settings

    top2 = _stage(confirmed["parents"], "confirm-top2")[0]
    given = SweepSettings(resume=True, runs_dir=str(confirmed["runs_dir"]))
    plan = plan_sweep(recorded_settings(top2, given))
    assert plan.confirm is not None and plan.settings.num_samples == 4
    assert len(plan.space.every_point()) == 4


def test_confirm_errors_are_one_line(confirmed, capsys):
    runs = str(confirmed["runs_dir"])
    stage = _stage(confirmed["parents"])[0].info.run_id
    assert main(["confirm", "--runs-dir", runs, "--sweep", stage]) == 2
    assert "is a confirm stage; give the search sweep it confirmed" in capsys.readouterr().err
    assert main(["confirm", "--runs-dir", runs, "--candidates", "best"]) == 2
    assert "must be front, top-K" in capsys.readouterr().err
    assert main(["confirm", "--runs-dir", runs, "--sweep", "nope"]) == 2
    assert "--sweep: got 'nope'" in capsys.readouterr().err


def test_confirm_inherits_the_search_sweeps_gpu_fraction_and_a_given_one_wins(confirmed):
    """GPU fractions reach the confirm stage: recorded by a search sweep run with
    --gpus-per-trial 0.25 (a parent made here from the real one's settings, as a GPU box records
    it), inherited by the confirm stage, and overridden by its own --gpus-per-trial."""
    import json

    from reports.schema import TAG_SETTINGS
    from sweep.api import confirm_settings

    client = confirmed["client"]
    search = next(p for p in confirmed["parents"] if schema.TAG_STAGE not in p.data.tags)
    recorded = {**json.loads(search.data.tags[TAG_SETTINGS]), "gpus_per_trial": 0.25, "cpus_per_trial": 2.0}
    gpu_run = client.create_run(search.info.experiment_id, run_name="search-on-a-gpu-box",
                                tags={**{k: v for k, v in search.data.tags.items() if not k.startswith("mlflow.")},
                                      TAG_SETTINGS: json.dumps(recorded)})
    client.set_terminated(gpu_run.info.run_id)
    runs = str(confirmed["runs_dir"])
    inherited = confirm_settings(gpu_run.info.run_id, runs_dir=runs)
    assert (inherited.gpus_per_trial, inherited.cpus_per_trial) == (0.25, 2.0)
    assert inherited.confirm_of == gpu_run.info.run_id
    given = confirm_settings(gpu_run.info.run_id, runs_dir=runs, gpus_per_trial=0.5)
    assert (given.gpus_per_trial, given.cpus_per_trial) == (0.5, 2.0)
