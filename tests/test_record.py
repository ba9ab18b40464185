"""The recorded benchmark: the record file, the replay's reports and the simulated sweep (fast, no Ray run).

The expected numbers come from a synthetic record built here from the space's own networks
(every network of ``fmnist-bench``, found by walking the space and de-duplicating by trial key)
with curves from a closed formula, so every sum below is computed independently of the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reports.pareto import parse_objectives
from resnetx.errors import ConfigError
from search_spaces import load_space
from sweep.config.experiment import trial_key
from sweep.config.settings import SweepSettings
from sweep.simulator import make_simulation
from sweep.tracking.record import Record, read_record, write_record
from sweep.tune.replay import check_matches, replay_reports

OBJECTIVES = parse_objectives("val_acc:max,params:min")
EPOCHS = 8


def formula_acc(params: float, epoch: int, offset: float) -> float:
    return (0.7 + 0.15 * (1 - math.exp(-params / 30000)) + offset) * (1 - 0.5 ** epoch)


def epoch_time(flops: float, epoch: int) -> float:
    return 1.0 + flops / 4e6 + 0.01 * epoch


@pytest.fixture(scope="module")
def space():
    return load_space("fmnist-bench")


@pytest.fixture(scope="module")
def networks(space):
    """trial key -> (params, flops) for every distinct network of the space."""
    found = {}
    for point in space.every_point():
        key = trial_key(point)
        if key not in found:
            cost = space.cost(point)
            found[key] = (cost.params, cost.flops)
    return found


@pytest.fixture(scope="module")
def record(space, networks):
    rows = []
    for i, (key, (params, flops)) in enumerate(sorted(networks.items())):
        replicates = [(0, 11)] + ([(1, 22)] if i % 7 == 0 else [])
        for replicate, seed in replicates:
            offset = ((i * 37) % 11) / 500 + 0.003 * replicate
            for epoch in range(1, EPOCHS + 1):
                rows.append({"config_hash": key, "replicate": replicate, "seed": seed, "epoch": epoch,
                             "val_acc": formula_acc(params, epoch, offset), "val_loss": 1.0 / epoch,
                             "train_loss": 1.2 / epoch, "epoch_time_s": epoch_time(flops, epoch),
                             "params": params, "flops": flops, "latency_ms": 0.5, "model.unit": "basic"})
    return Record(pd.DataFrame(rows), {"space": space.name, "space_definition_sha256": space.definition_hash()})


def test_the_space_holds_224_distinct_networks(networks):
    # 4 units x 2 bottle_scales x 2 widths x 14 (split, fold, start, end) structures: fold 1 ignores the
    # ids (1 per split), fold 2 over 3 units has 1 (start 2, end 3), over 4 units 3: 1+1 + 3*(1+3) = 14
    assert len(networks) == 4 * 2 * 2 * 14


def test_the_file_round_trips_with_its_provenance(record, tmp_path):
    path = write_record(record, tmp_path / "r.csv")
    back = read_record(path)
    assert back.provenance == record.provenance
    assert back.keys == record.keys and back.epochs == EPOCHS
    assert np.allclose(back.frame["val_acc"], record.frame["val_acc"], rtol=1e-5)
    assert path.read_text().startswith("# resnetx-record 1\n# {")
    assert pd.read_csv(path, comment="#").shape == record.frame.shape  # plain pandas reads the table


def test_a_truncated_record_names_its_first_bad_line_and_the_cli_exits_2(tmp_path, capsys):
    """A copy cut off in the middle of its 41st line (the review's "cannot convert float NaN to integer")."""
    from sweep.cli.main import main

    lines = (Path(__file__).resolve().parents[1] / "bench/records/fmnist-bench.csv").read_text().splitlines()
    path = tmp_path / "cut.csv"
    path.write_text("\n".join(lines[:40]) + "\n" + lines[40][:30] + "\n")
    with pytest.raises(ConfigError, match=r"line 41 has no valid epoch_time_s, params \(1 such rows"):
        read_record(path)
    code = main(["sweep", "--space", "fmnist-bench", "--trainable", "replay", "--record", str(path),
                 "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "line 41" in err and str(path) in err


@pytest.mark.parametrize("content, match", [
    ("config_hash,epoch\n", r"^--record: got '.*'; is not a resnetx record"),
    ("# resnetx-record 9\n# {}\nx\n", r"has format 9; this version reads format 1"),
    ("# resnetx-record 1\n# {nope\nx\n", r"provenance line is not JSON"),
    ("# resnetx-record 1\n# {}\nconfig_hash,epoch\na,1\n", r"lacks the columns replicate, seed"),
])
def test_a_bad_record_is_one_line_naming_the_file(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        read_record(path)
    with pytest.raises(ConfigError, match=r"no such file"):
        read_record(tmp_path / "missing.csv")


def test_replay_reports_the_recorded_epochs_and_their_simulated_cost(record, networks):
    key = sorted(networks)[3]
    params, flops = networks[key]
    reports = replay_reports(record, key, seed=11, epochs=EPOCHS)
    assert [r["epoch"] for r in reports] == list(range(1, EPOCHS + 1))
    assert reports[-1]["status"] == "finished" and all(r["status"] == "running" for r in reports[:-1])
    assert reports[-1]["train_time_s"] == pytest.approx(sum(epoch_time(flops, e) for e in range(1, EPOCHS + 1)))
    assert reports[4]["val_acc"] == pytest.approx(formula_acc(params, 5, ((3 * 37) % 11) / 500))
    assert reports[-1]["params"] == params and reports[-1]["simulated"] == 1.0


def test_a_network_recorded_twice_replays_the_replicate_of_its_seed(record, networks):
    key = sorted(networks)[0]  # i = 0: two replicates, seeds 11 and 22
    first, second = (replay_reports(record, key, seed, EPOCHS)[-1]["val_acc"] for seed in (11, 22))
    assert second - first == pytest.approx(0.003 * (1 - 0.5 ** EPOCHS))
    assert replay_reports(record, key, 99, EPOCHS)[-1]["val_acc"] == first  # another seed: the first replicate
    spread = record.replicate_spread()
    assert len(spread) == len(range(0, len(networks), 7))


def test_a_network_outside_the_record_is_an_error_naming_it(record):
    with pytest.raises(ConfigError, match=r"^record: got 'abcdef123456'; is not a network of the record of space"):
        replay_reports(record, "abcdef123456", 0, EPOCHS)
    with pytest.raises(ConfigError, match=r"^train.epochs: got 9; the record holds 8 epochs"):
        replay_reports(record, record.keys[0], 0, 9)


def test_the_replayed_space_must_be_the_records(record, space):
    check_matches(record, space, "r.csv")
    with pytest.raises(ConfigError, match=r"^--space: got 'quick'; the record r.csv is of space 'fmnist-bench'"):
        check_matches(record, load_space("quick"), "r.csv")
    changed = Record(record.frame, {**record.provenance, "space_definition_sha256": "0" * 64})
    with pytest.raises(ConfigError, match=r"has changed since the record r.csv was made"):
        check_matches(changed, space, "r.csv")


def test_settings_tie_replay_and_record_together():
    with pytest.raises(ConfigError, match=r"^trainable: got 'replay'; needs --record FILE"):
        SweepSettings(trainable="replay")
    with pytest.raises(ConfigError, match=r"^record: got 'r.csv'; is read only by --trainable replay"):
        SweepSettings(record="r.csv")


def full_cost(record: Record, key: str) -> float:
    return float(record.curve(key)["epoch_time_s"].sum())


def test_a_simulated_sweep_without_early_stopping_trains_each_proposal_to_the_end(record, space):
    sim = make_simulation(record, space, OBJECTIVES, search="random", scheduler="none", seed=3, num_samples=12)
    keys = [t.key for t in sim.trials]
    assert len(keys) == 12 == len(set(keys))  # de-duplicated like a sweep
    assert all(t.status == "finished" and t.epochs_run == EPOCHS for t in sim.trials)
    assert sim.compute == pytest.approx(sum(full_cost(record, k) for k in keys))
    # two workers: the simulated wall time lies between half the compute and all of it
    assert sim.compute / 2 - 1e-9 <= sim.wall_time <= sim.compute
    again = make_simulation(record, space, OBJECTIVES, search="random", scheduler="none", seed=3, num_samples=12)
    assert [t.key for t in again.trials] == keys  # seeded: the same sweep twice


def test_early_stopping_charges_only_the_epochs_a_trial_ran(record, space):
    sim = make_simulation(record, space, OBJECTIVES, search="random", scheduler="asha", seed=0, num_samples=40)
    stopped = [t for t in sim.trials if t.status == "stopped_early"]
    assert stopped and all(t.epochs_run < EPOCHS for t in stopped)
    charged = sum(float(record.curve(t.key)["epoch_time_s"].iloc[:t.epochs_run].sum()) for t in sim.trials)
    assert sim.compute == pytest.approx(charged)
    assert len(sim.finished()) < len(sim.trials)


def test_a_compute_limit_cuts_the_sweep_off(record, space, networks):
    limit = record.total_compute() * 0.1
    sim = make_simulation(record, space, OBJECTIVES, search="random", scheduler="none", seed=0, num_samples=1000,
                          compute_limit=limit)
    assert sim.compute <= limit and sim.stop_reason == "the compute limit"
    # it stops at the first epoch that would cross the limit: no more than one epoch short of it
    assert sim.compute > limit - max(epoch_time(flops, EPOCHS) for _, flops in networks.values())


def test_random_search_over_the_whole_record_never_trains_a_network_twice(record, space):
    sim = make_simulation(record, space, OBJECTIVES, search="random", scheduler="none", seed=1, num_samples=10_000)
    keys = [t.key for t in sim.trials]
    assert len(keys) == len(set(keys)) == len(record.keys)  # every one, none twice
    assert "used up" in sim.stop_reason


def test_tpe_trains_every_network_before_it_says_the_space_is_used_up(record, space):
    """TPE on this small discrete space kept proposing networks it had seen: the sweep stopped after
    200 duplicates in a row with 128 of the 224 networks trained, saying the space was used up. After
    3 duplicates in a row the searcher now asks for an untrained point drawn at random."""
    sim = make_simulation(record, space, OBJECTIVES, search="optuna", scheduler="none", seed=0, num_samples=10_000)
    keys = [t.key for t in sim.trials]
    assert len(keys) == len(set(keys)) == len(record.keys)
    assert "used up" in sim.stop_reason
