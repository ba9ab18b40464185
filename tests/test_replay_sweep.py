"""Recording a space from real sweeps, replaying it as a normal sweep, and checking the committed record.

- A small finite space is swept with the stand-in trainable (real Ray, real MLflow), recorded
  with ``resnetx record``, and its rows checked against the stand-in's closed formula.
- The record is replayed by a real sweep (``--trainable replay``): MLflow runs and the report as
  for any sweep, each run's curve equal to the record's, and the simulator (the bench's engine)
  running the same trials to the same epochs.
- The committed ``bench/records/fmnist-bench.csv``: a 64-trial replayed sweep with ASHA runs the
  simulator's trials to the same epochs. Its speed (bench/replay_speed.py) and a retrain of some
  of its networks against the record (bench/validate_record.py) are benchmarks, not unit tests.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reports import schema
from reports.pareto import parse_objectives
from search_spaces import load_space
from sweep.cli import main
from sweep.config.experiment import trial_key
from sweep.simulator import make_simulation
from sweep.tracking.record import read_record
from tests.support.standin import synthetic_val_acc
from tests.sweep_helpers import all_runs, client_for, split_runs
from tests.test_faults_common import fresh_runs_dir, standin_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "bench" / "records" / "fmnist-bench.csv"
OBJECTIVES = "val_acc:max,params:min"

TINY = textwrap.dedent("""\
    name: tiny-bench
    objectives: [val_acc:max, params:min]
    reference: {val_acc: 0.1, params: 100000}
    model:
      stem: cifar
      in_channels: 1
      num_classes: 10
      unit: basic
      base: {choice: [8, 16]}
      stem_width: {expr: base}
      num_nodes: [1, 1, 1]
      fold: {low: 1, high: 2}
      start_id: 2
      end_id: 3
    data: {name: digits}
    train: {epochs: 3}
""")


def _histories(client, run) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_acc")}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A 4-network finite space swept (seed 0, every network; seed 1, two of them) and recorded."""
    folder = tmp_path_factory.mktemp("tiny-bench")
    space_file = folder / "tiny-bench.yaml"
    space_file.write_text(TINY)
    runs_dir = fresh_runs_dir(folder / "runs")
    env = standin_env(epoch_s=0.05)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        common = ["--trainable", "synthetic", "--runs-dir", str(runs_dir), "--space", str(space_file), "--no-report"]
        assert main(["sweep", *common, "--search", "grid", "--num-samples", "4"]) == 0  # not a grid: finite
        assert main(["sweep", *common, "--search", "random", "--seed", "1", "--num-samples", "2"]) == 0
    out = folder / "tiny-bench.csv"
    assert main(["record", "--space", str(space_file), "--runs-dir", str(runs_dir), "--out", str(out)]) == 0
    return space_file, runs_dir, out


def test_the_record_holds_every_epoch_of_every_finished_trial(recorded):
    space_file, _, out = recorded
    record = read_record(out)
    assert len(record.keys) == 4 and record.epochs == 3
    assert len(record.replicate_spread()) == 2  # the seed-1 sweep's two networks
    for row in record.frame.to_dict("records"):  # the stand-in's own formula, not the code under test
        assert row["val_acc"] == pytest.approx(synthetic_val_acc(int(row["params"]), row["config_hash"],
                                                                 int(row["seed"]), int(row["epoch"])), abs=1e-6)
        assert 0.05 <= row["epoch_time_s"] < 5
    space = load_space(str(space_file))
    assert set(record.keys) == {trial_key(p) for p in space.every_point()}
    provenance = record.provenance
    assert provenance["space"] == "tiny-bench" and provenance["space_definition_sha256"] == space.definition_hash()
    assert len(provenance["sweep_run_ids"]) == 2 and provenance["torch"] and provenance["machine"]
    assert provenance["code_version"] != "unknown"


def test_a_replayed_sweep_is_a_normal_sweep_with_the_records_curves(recorded, tmp_path):
    space_file, _, out = recorded
    record = read_record(out)
    runs_dir = fresh_runs_dir(tmp_path / "replay")
    rc = main(["sweep", "--trainable", "replay", "--record", str(out), "--space", str(space_file), "--runs-dir",
               str(runs_dir), "--search", "random", "--seed", "5", "--num-samples", "4", "--max-concurrent", "1"])
    assert rc == 0
    client = client_for(runs_dir)
    parents, children = split_runs(all_runs(client))
    assert len(parents) == 1 and len(children) == 4
    children.sort(key=lambda r: r.info.start_time)
    for run in children:
        key, seed = run.data.tags[schema.TAG_CONFIG_HASH], int(run.data.params["train.seed"])
        curve = record.curve(key, seed)
        assert _histories(client, run) == pytest.approx(dict(zip(curve["epoch"], curve["val_acc"])))
        assert run.data.metrics["train_time_s"] == pytest.approx(curve["epoch_time_s"].sum(), rel=1e-5)
        assert run.data.tags[schema.TAG_STATUS] == schema.STATUS_FINISHED
    assert (runs_dir / "reports" / parents[0].info.run_id / "report.md").is_file()
    sim = make_simulation(record, load_space(str(space_file)), parse_objectives(OBJECTIVES), search="random",
                          scheduler="none", seed=5, num_samples=4, workers=1)
    assert [t.key for t in sim.trials] == [r.data.tags[schema.TAG_CONFIG_HASH] for r in children]


def test_replay_refuses_another_space_and_changed_training_in_one_line(recorded, tmp_path, capsys):
    _, _, out = recorded
    runs_dir = tmp_path / "refused"
    assert main(["sweep", "--trainable", "replay", "--record", str(out), "--space", "quick",
                 "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("resnetx: error: --space: got 'quick'; the record") and "is of space 'tiny-bench'" in err
    space_file = recorded[0]
    assert main(["sweep", "--trainable", "replay", "--record", str(out), "--space", str(space_file),
                 "--runs-dir", str(runs_dir), "--set", "train.epochs=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("resnetx: error: --set: got 'train.epochs=4'; the trials' network") and "\n" not in err
    assert not (runs_dir / "mlflow.db").exists()  # refused before any store or Ray


def test_a_replayed_64_trial_sweep_with_asha_runs_the_simulators_trials(tmp_path):
    """Its speed is a benchmark (bench/replay_speed.py); here: the same networks to the same epochs."""
    record = read_record(COMMITTED)
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    rc = main(["sweep", "--trainable", "replay", "--record", str(COMMITTED), "--space", "fmnist-bench",
               "--runs-dir", str(runs_dir), "--search", "random", "--num-samples", "64", "--scheduler", "asha",
               "--max-concurrent", "1"])
    assert rc == 0
    client = client_for(runs_dir)
    _, children = split_runs(all_runs(client))
    children.sort(key=lambda r: r.info.start_time)
    assert len(children) == 64
    sim = make_simulation(record, load_space("fmnist-bench"), parse_objectives(OBJECTIVES), search="random",
                          scheduler="asha", seed=0, num_samples=64, workers=1)
    real = [(r.data.tags[schema.TAG_CONFIG_HASH], max(_histories(client, r))) for r in children]
    assert [(t.key, t.epochs_run) for t in sim.trials] == real
    assert any(epochs < record.epochs for _, epochs in real)  # ASHA stopped some
