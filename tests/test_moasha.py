"""MO-ASHA: a rung continues its top max(1, floor(n/eta)) by non-dominated sorting and an epsilon-net.

The rule is checked against a brute-force top-k written from the paper's definition
(tests/support/brute.py), for the promoted fraction with 2 and 3 objectives, and end to end on
the recorded benchmark through the simulator (the same scheduler object Tune drives, in
milliseconds), where every decision is recomputed from the rung's contents at that moment.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from reports.pareto import LOG_SCALE_OBJECTIVES, parse_objectives, top_k
from sweep.search.rungs import MOASHARungs, promotes, promotion_slots, rung_milestones
from tests.support.brute import brute_ranks, brute_top_k

RECORD = Path(__file__).resolve().parents[1] / "bench" / "records" / "fmnist-bench.csv"
MAXIMIZE_2 = [True, False]
LOG_2 = [False, True]


def random_rung(rng, n, objectives):
    """n results at a rung: coarse values, so that ties and shared fronts happen."""
    rows = []
    for _ in range(n):
        row = [round(rng.random(), 1), rng.choice([1_000, 2_000, 5_000, 10_000, 50_000])]
        if objectives == 3:
            row.append(rng.choice([0.1, 0.2, 0.5, 1.0]))
        rows.append(row)
    return rows


@pytest.mark.parametrize("objectives", [2, 3])
def test_top_k_matches_the_brute_force_definition(objectives):
    rng = random.Random(objectives)
    maximize = [True, False, False][:objectives]
    log_scale = [False, True, True][:objectives]
    for _ in range(400):
        rows = random_rung(rng, rng.randint(1, 14), objectives)
        k = rng.randint(1, len(rows))
        assert set(top_k(rows, maximize, k, log_scale)) == brute_top_k(rows, maximize, k, log_scale), (rows, k)


@pytest.mark.parametrize("objectives", [2, 3])
def test_promotes_continues_exactly_the_brute_force_top_k(objectives):
    rng = random.Random(10 + objectives)
    maximize = [True, False, False][:objectives]
    log_scale = [False, True, True][:objectives]
    for _ in range(300):
        rows = random_rung(rng, rng.randint(1, 12), objectives)
        rf = rng.choice([2, 3, 4])
        k = max(1, len(rows) // rf)
        expected = len(rows) - 1 in brute_top_k(rows, maximize, k, log_scale)
        assert promotes(rows[:-1], rows[-1], maximize, rf, log_scale) == expected, (rows, rf)


def test_the_reviews_rung_keeps_two_of_five_at_eta_2():
    """(0.65, 250) arrives at a rung of four: all five on one front, floor(5/2) = 2 may continue."""
    recorded = [[0.50, 100], [0.60, 200], [0.70, 300], [0.80, 400]]
    assert not promotes(recorded, [0.65, 250], MAXIMIZE_2, 2, LOG_2)
    chosen = brute_top_k([*recorded, [0.65, 250]], MAXIMIZE_2, 2, LOG_2)
    assert chosen == {0, 3}  # the two ends of the front: the most accurate and the smallest


def test_promotion_slots():
    assert [promotion_slots(n, 2) for n in range(1, 8)] == [1, 1, 1, 2, 2, 3, 3]
    assert [promotion_slots(n, 3) for n in (1, 3, 5, 6, 9)] == [1, 1, 1, 2, 3]


@pytest.mark.parametrize("objectives,rf", [(2, 2), (3, 2), (2, 3), (3, 3)])
def test_promoted_fraction_is_about_one_over_eta_with_two_and_three_objectives(objectives, rf):
    """Arrivals in random order: each is promoted when it ranks in the top 1/rf of those so far, so
    about 1/rf of them continue, however many objectives (rank 0 alone would pass most of a rung
    with three objectives)."""
    rng = random.Random(objectives * 7 + rf)
    maximize = [True, False, False][:objectives]
    log_scale = [False, True, True][:objectives]
    rows = []
    for _ in range(300):  # as in a real rung: accuracy and latency rise with size, so fronts are large
        size = rng.uniform(3, 5)
        row = [0.5 + 0.1 * size + rng.gauss(0, 0.02), 10**size, 0.1 * size + rng.gauss(0, 0.05)]
        rows.append(row[:objectives])
    promoted = sum(promotes(rows[:i], rows[i], maximize, rf, log_scale) for i in range(len(rows)))
    fraction = promoted / len(rows)
    assert 0.7 / rf <= fraction <= 1.3 / rf, fraction
    if objectives == 3 and rf == 2:  # the earlier rule (rank 0, or fewer than n/rf ranked better) passed most
        earlier = 0
        for i in range(len(rows)):
            ranks = brute_ranks(rows[: i + 1], maximize)
            earlier += ranks[-1] == 0 or sum(r < ranks[-1] for r in ranks) < (i + 1) / rf
        assert earlier / len(rows) > 1.3 / rf, earlier


def test_a_small_network_on_the_rung_front_is_promoted_where_asha_would_stop_it():
    recorded = [[0.90, 200_000], [0.89, 150_000], [0.88, 120_000]]
    small = [0.80, 10_000]  # the worst accuracy at the rung, but an end of its front
    assert promotes(recorded, small, MAXIMIZE_2, 2, LOG_2)
    assert not promotes(recorded, [0.80, 300_000], MAXIMIZE_2, 2, LOG_2)  # dominated by all


def test_a_result_with_a_missing_objective_is_never_promoted():
    assert not promotes([[0.5, 10.0]], [float("nan"), 5.0], MAXIMIZE_2, 2, LOG_2)


def test_rung_milestones():
    assert rung_milestones(1, 2, 9) == [1, 2, 4, 8]
    assert rung_milestones(2, 3, 18) == [2, 6]
    assert rung_milestones(1, 100, 3) == [1]
    assert rung_milestones(5, 2, 5) == []


def test_rung_records_survive_a_restore(tmp_path):
    objectives = parse_objectives("val_acc:max,params:min")
    path = tmp_path / "moasha-rungs.json"
    first = MOASHARungs(objectives, 1, 2, state_path=str(path))
    assert first.decide("a", 1, [0.5, 10.0], max_epochs=4) is True  # the first at a rung continues
    with open(path, "a") as handle:
        handle.write('{"trial_id": "b", "ru')  # a line cut short by a kill mid-write
    again = MOASHARungs(objectives, 1, 2, state_path=str(path))  # what Tuner.restore rebuilds
    again.load()
    assert again.rungs == {1: {"a": [0.5, 10.0]}}
    assert [d["trial_id"] for d in again.decisions] == ["a"]


def test_rungs_written_in_the_earlier_format_load(tmp_path):
    import json

    path = tmp_path / "moasha-rungs.json"
    decision = {"trial_id": "a", "rung": 2, "values": [0.5, 10.0], "promoted": False}
    path.write_text(json.dumps({"rungs": {"2": {"a": [0.5, 10.0]}}, "decisions": [decision]}))
    again = MOASHARungs(parse_objectives("val_acc:max,params:min"), 1, 2, state_path=str(path))
    again.load()
    assert again.rungs == {2: {"a": [0.5, 10.0]}} and again.decisions == [decision]


@pytest.mark.parametrize("objectives", ["val_acc:max,params:min", "val_acc:max,params:min,latency_ms:min"])
def test_every_decision_of_a_simulated_sweep_is_the_rungs_top_k(objectives):
    """The scheduler as Tune drives it, over the recorded benchmark (2 workers, random search): each
    decision equals the brute-force top-k of what its rung held at that moment, a stopped trial ran
    exactly to its rung, and about 1/eta of a rung continues (early arrivals, judged against few, pass more)."""
    from search_spaces import load_space
    from sweep.search.proposers import make_proposer
    from sweep.simulator import simulate_sweep
    from sweep.tracking.record import read_record
    from sweep.tune.schedulers import make_scheduler
    from sweep.tune.searcher import ResNetXSearcher

    record, space = read_record(RECORD), load_space("fmnist-bench")
    objs = parse_objectives(objectives)
    maximize = [o.maximize for o in objs]
    log_scale = [o.name in LOG_SCALE_OBJECTIVES for o in objs]
    searcher = ResNetXSearcher(space, make_proposer("random", space, objs, 3, 80), objs, 3)
    scheduler = make_scheduler("moasha", objs, None, grace_period=1, reduction_factor=2, rung_metric="accuracy")
    simulation = simulate_sweep(record, searcher, scheduler, num_samples=80, workers=2)
    rungs: dict[int, list[list[float]]] = {}
    for decision in scheduler.decisions:
        held = rungs.setdefault(decision["rung"], [])
        held.append([float(v) for v in decision["values"]])
        slots = max(1, len(held) // 2)
        assert decision["promoted"] == (len(held) - 1 in brute_top_k(held, maximize, slots, log_scale))
    epochs = {t.trial_id: t.epochs_run for t in simulation.trials}
    for decision in scheduler.decisions:
        if not decision["promoted"]:
            assert epochs[decision["trial_id"]] == decision["rung"]
    for rung, held in rungs.items():
        promoted = sum(d["promoted"] for d in scheduler.decisions if d["rung"] == rung)
        assert promoted <= 0.6 * len(held) + 2, (rung, promoted, len(held))  # asynchronous: early arrivals pass


def _rung_rows(rng, n, objectives):
    """Coarse values (ties, shared fronts), a few non-finite ones."""
    rows = random_rung(rng, n, objectives)
    for row in rows:
        if rng.random() < 0.05:
            row[rng.randrange(objectives)] = rng.choice([float("nan"), float("inf")])
    return rows


@pytest.mark.parametrize("objectives", [2, 3])
def test_each_decision_of_the_ranked_rung_equals_top_k_of_the_whole_rung(objectives, tmp_path):
    """MOASHARungs keeps each rung's ranks up to date instead of sorting the rung at every decision:
    every decision still equals ``promotes`` over the whole rung (and the brute-force top-k), also
    after a restore from the state file halfway (the rung's ranks rebuilt from its records)."""
    objs = parse_objectives("val_acc:max,params:min,latency_ms:min" if objectives == 3 else "val_acc:max,params:min")
    maximize = [o.maximize for o in objs]
    log_scale = [o.name in LOG_SCALE_OBJECTIVES for o in objs]
    for case in range(40):
        rng = random.Random(100 * objectives + case)
        rf = rng.choice([2, 3, 4])
        rows = _rung_rows(rng, rng.randint(1, 70), objectives)
        path = tmp_path / f"rungs-{case}.json"
        rungs = MOASHARungs(objs, 1, rf, state_path=str(path))
        for i, row in enumerate(rows):
            if i == len(rows) // 2:  # what Tuner.restore rebuilds
                rungs = MOASHARungs(objs, 1, rf, state_path=str(path))
            expected = promotes(rows[:i], row, maximize, rf, log_scale)
            assert rungs.decide(f"t{i}", 1, row, max_epochs=2) is expected, (case, i, rows[: i + 1])
            if i < 25:
                slots = promotion_slots(i + 1, rf)
                assert expected == (i in brute_top_k(rows[: i + 1], maximize, slots, log_scale))


def _prefilled(tmp_path, n):
    """A rung of ``n`` results written in the state file (as a killed sweep leaves it), loaded."""
    import json

    rng = random.Random(n)
    lines = []
    for i in range(n):
        size = rng.uniform(3, 5)
        lines.append(json.dumps({"trial_id": f"t{i}", "rung": 1, "promoted": True,
                                 "values": [0.5 + 0.1 * size + rng.gauss(0, 0.02), 10**size]}))
    path = tmp_path / "moasha-rungs.json"
    path.write_text("\n".join(lines) + "\n")
    rungs = MOASHARungs(parse_objectives("val_acc:max,params:min"), 1, 2, state_path=str(path))
    rungs.decide("first", 1, [0.9, 5e4], max_epochs=2)  # loads the file and ranks the rung once
    return rungs, rng


def test_a_rung_decision_needs_memory_linear_in_the_rung_not_quadratic(tmp_path):
    """A decision at a rung of 3,000 results allocates O(n) (a comparison of the new point with each
    result), not the n x n x k dominance matrices of sorting the whole rung (~18 MB each here)."""
    import tracemalloc

    rungs, rng = _prefilled(tmp_path, 3_000)
    tracemalloc.start()
    try:
        for i in range(5):
            size = rng.uniform(3, 5)
            rungs.decide(f"new{i}", 1, [0.5 + 0.1 * size, 10**size], max_epochs=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, peak  # 3,000 x 2 floats are 48 kB


def test_the_state_file_is_synced_at_most_once_a_second(tmp_path, monkeypatch):
    """Every decision is flushed (a killed driver loses none), but fsync'ed at most every SYNC_EVERY_S:
    200 decisions in 0.2 s (a fake clock) cost one fsync, not 200."""
    import os

    from sweep.search import rungs as rungs_module

    clock = iter(i * 0.001 for i in range(10_000))
    monkeypatch.setattr(rungs_module.time, "monotonic", lambda: next(clock))
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(rungs_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "moasha-rungs.json"
    rungs = MOASHARungs(parse_objectives("val_acc:max,params:min"), 1, 2, state_path=str(path))
    rng = random.Random(0)
    for i in range(200):
        rungs.decide(f"t{i}", 1, [rng.random(), rng.uniform(1e4, 1e6)], max_epochs=2)
    assert len(synced) == 1
    assert len(path.read_text().splitlines()) == 200  # every decision is in the file
    again = MOASHARungs(parse_objectives("val_acc:max,params:min"), 1, 2, state_path=str(path))
    again.load()
    assert again.rungs == rungs.rungs
