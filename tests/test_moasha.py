"""MO-ASHA: rungs promote by non-dominated rank over every objective, not by accuracy alone.

The decision rule is checked against a brute-force dominance count written here; the scheduler
is checked end to end on the deterministic stand-in trainable (real Ray Tune, real MLflow),
whose learning curves are a known family: ``val_acc`` rises with the epoch and, saturating, with
the parameter count, plus a per-config offset. With a reduction factor larger than the number
of trials, the "top 1/rf" part of the rule admits nobody, so the trials it promotes past a rung
must be exactly those on that rung's front at the moment they reported.
"""

from __future__ import annotations

import random

import pytest

from reports import schema
from sweep.cli import main
from sweep.tune.moasha import MOASHAScheduler, promotes, rung_milestones
from tests.sweep_helpers import all_runs, client_for, split_runs
from tests.test_faults_common import fresh_runs_dir, standin_env


def dominated_by(a, b, maximize):
    """True when b dominates a (brute force)."""
    better_or_equal = all((y >= x) if m else (y <= x) for x, y, m in zip(a, b, maximize))
    strictly = any((y > x) if m else (y < x) for x, y, m in zip(a, b, maximize))
    return better_or_equal and strictly


def brute_rank(points, maximize):
    remaining, rank, ranks = set(range(len(points))), 0, {}
    while remaining:
        front = {i for i in remaining if not any(dominated_by(points[i], points[j], maximize) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return [ranks[i] for i in range(len(points))]


def test_promotes_matches_a_brute_force_rank_count():
    rng = random.Random(0)
    maximize = [True, False]
    for _ in range(300):
        n = rng.randint(1, 12)
        points = [[round(rng.random(), 1), rng.choice([1, 2, 3, 5, 8])] for _ in range(n)]
        rf = rng.choice([2, 3, 4])
        ranks = brute_rank(points, maximize)
        better = sum(r < ranks[-1] for r in ranks)
        expected = n == 1 or ranks[-1] == 0 or better < n / rf
        assert promotes(points[:-1], points[-1], maximize, rf) == expected, (points, rf)


def test_a_small_network_on_the_rung_front_is_promoted_where_asha_would_stop_it():
    recorded = [[0.90, 200_000], [0.89, 150_000], [0.88, 120_000]]
    small = [0.80, 10_000]  # the worst accuracy at the rung, but nothing is smaller
    assert promotes(recorded, small, [True, False], reduction_factor=2)
    assert not promotes(recorded, [0.80, 300_000], [True, False], reduction_factor=2)  # dominated by all


def test_rung_milestones():
    assert rung_milestones(1, 2, 9) == [1, 2, 4, 8]
    assert rung_milestones(2, 3, 18) == [2, 6]
    assert rung_milestones(1, 100, 3) == [1]
    assert rung_milestones(5, 2, 5) == []


def test_rung_records_survive_a_restore(tmp_path):
    from reports.pareto import parse_objectives

    objectives = parse_objectives("val_acc:max,params:min")
    path = str(tmp_path / "moasha-rungs.json")
    first = MOASHAScheduler(objectives, 1, 2, state_path=path)
    first.set_time_limit(None)
    first.rungs = {1: {"a": [0.5, 10.0]}}
    first._loaded = True
    first._save()
    again = MOASHAScheduler(objectives, 1, 2, state_path=path)  # what Tuner.restore rebuilds
    again._load()
    assert again.rungs == {1: {"a": [0.5, 10.0]}}


@pytest.mark.slow
def test_moasha_promotes_exactly_the_rung_fronts_of_the_stand_in(tmp_path, monkeypatch):
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    for key, value in standin_env(epoch_s=0.05).items():
        monkeypatch.setenv(key, value)
    rc = main(["sweep", "--trainable", "synthetic", "--runs-dir", str(runs_dir), "--space", "quick",
               "--search", "random", "--num-samples", "14", "--max-concurrent", "1", "--scheduler", "moasha",
               "--grace-period", "1", "--reduction-factor", "100", "--set", "train.epochs=3", "--no-report"])
    assert rc == 0
    _, children = split_runs(all_runs(client_for(runs_dir)))
    client = client_for(runs_dir)
    children.sort(key=lambda r: r.info.start_time)  # one trial at a time: arrival order at the rung
    assert len(children) == 14
    seen: list[list[float]] = []
    promoted, stopped = 0, 0
    for run in children:
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_acc")}
        point = [history[1], run.data.metrics["params"]]
        on_front = not any(dominated_by(point, other, [True, False]) for other in seen)
        seen.append(point)
        epochs = max(history)
        assert epochs == (3 if on_front else 1), (point, seen)
        status = run.data.tags[schema.TAG_STATUS]
        assert status == (schema.STATUS_FINISHED if on_front else schema.STATUS_STOPPED)
        promoted, stopped = promoted + on_front, stopped + (not on_front)
    assert promoted >= 3 and stopped >= 3  # both decisions happened
