"""The driver's costs that grow with a sweep: counted, not timed (bench/driver_scale.py times them).

- ``SearchCore`` keys a finite space's points when it is built (the sweep's plan), never inside
  Tune's ``suggest``: every key computed in ``suggest`` is one of its own proposals.
- TPE's history bound: the study the sampler reads stays within ``history * 5/4`` finished trials,
  the best and the most recent are kept, running trials are told across windows, and below the
  bound the proposals are exactly the unbounded ones.
- The benchmark's driver-overhead model and its measurements run (tiny sizes).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from reports.pareto import parse_objectives
from search_spaces import load_space
from sweep.search.core import SearchCore
from sweep.search.proposers import OptunaProposer, RandomProposer

OBJECTIVES = parse_objectives("val_acc:max,params:min")
BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench():
    spec = importlib.util.spec_from_file_location("driver_scale_bench", BENCH / "driver_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(config: dict, rng: random.Random) -> dict:
    return {"val_acc": rng.random(), "params": rng.uniform(1e4, 4e5), "epoch": 1, "status": "finished",
            "config_hash": config["config_hash"]}


def test_suggest_keys_only_its_own_proposals_and_never_enumerates_the_space(monkeypatch):
    """fmnist-bench (496 points, 224 networks), random search until the space is used up: the
    searcher explores (it picks untrained networks of the finite space) yet ``suggest`` keys only
    the proposals it makes, and never walks the space; before, the first exploration keyed all
    496 points inside one ``suggest``."""
    space = load_space("fmnist-bench")
    core = SearchCore(space, RandomProposer(space, 0), OBJECTIVES, 0)
    assert core.finite_points is not None and len(core.finite_points) == 224  # keyed when built
    keyed = []
    real = core._key_if_valid
    monkeypatch.setattr(core, "_key_if_valid", lambda config: (keyed.append(1), real(config))[1])
    monkeypatch.setattr(space, "every_point", lambda *a, **k: pytest.fail("suggest walked the space"))
    rng = random.Random(0)
    for i in range(300):
        config = core.suggest(f"t{i}")
        if not isinstance(config, dict):
            break
        core.on_trial_complete(f"t{i}", result=_result(config, rng))
    assert core.explorations > 0 and core.stats.trained == 224, core.stats
    assert len(keyed) == core.stats.proposed


def test_the_untrained_points_kept_between_explorations_are_those_of_a_fresh_look():
    space = load_space("fmnist-bench")
    core = SearchCore(space, RandomProposer(space, 1), OBJECTIVES, 1)
    rng = random.Random(1)
    for i in range(150):
        config = core.suggest(f"t{i}")
        core.on_trial_complete(f"t{i}", result=_result(config, rng))
        if core.untrained_points is not None:
            fresh = [j for j, (key, _) in enumerate(core.finite_points) if not core._started(key)]
            kept = [j for j in core.untrained_points if not core._started(core.finite_points[j][0])]
            assert kept == fresh  # what the next exploration picks among, in the same order
    assert core.explorations > 0


def test_a_space_too_large_to_explore_exactly_is_found_out_without_building_its_points(monkeypatch):
    space = load_space("quick")  # more than 20,000 points
    monkeypatch.setattr(space, "every_point", lambda *a, **k: pytest.fail("built every point"))
    core = SearchCore(space, RandomProposer(space, 0), OBJECTIVES, 0)
    assert core.finite_points == [] and core._finite_points() is None


def _drive(proposer: OptunaProposer, tells: int, seed: int = 0, running: int = 4) -> list[dict]:
    """Ask and tell ``tells`` trials, ``running`` at a time, some stopped or failed; the proposals."""
    rng = random.Random(seed)
    pending, proposals = [], []
    while tells > 0:
        config, token = proposer.propose()
        proposals.append(config)
        pending.append(token)
        if len(pending) > running:
            token = pending.pop(rng.randrange(len(pending)))
            tells -= 1
            r = rng.random()
            if r < 0.1:
                proposer.tell_stopped(token)
            elif r < 0.15:
                proposer.tell(token, None)
            else:
                proposer.tell(token, [rng.random(), rng.uniform(1e4, 4e5)])
    for token in pending:
        proposer.tell(token, [rng.random(), rng.uniform(1e4, 4e5)])
    return proposals


def test_tpe_history_bound_keeps_the_study_small_and_the_best_trials():
    import optuna

    space = load_space("fmnist-pareto")
    proposer = OptunaProposer(space, OBJECTIVES, 0, 200, history=40)
    _drive(proposer, 300)
    finished = [t for t in proposer.study.trials if t.state.is_finished()]
    assert proposer.windows >= 5 and len(finished) <= 50
    assert not proposer.asked  # every running trial was told, across windows
    assert not [t for t in proposer.study.trials if t.state == optuna.trial.TrialState.RUNNING]
    # the last window kept (at least) the front of what it saw: nothing kept is dominated by a dropped trial
    assert proposer.offset + len(proposer.study.trials) >= 300


def test_below_the_bound_tpe_proposes_exactly_what_unbounded_tpe_does():
    space = load_space("fmnist-pareto")
    bounded = _drive(OptunaProposer(space, OBJECTIVES, 3, 100, history=1_000), 60, seed=3)
    unbounded = _drive(OptunaProposer(space, OBJECTIVES, 3, 100, history=None), 60, seed=3)
    assert bounded == unbounded


def test_the_sweeps_tpe_reads_half_the_history_with_three_objectives():
    """What ``--search optuna`` builds: a 3-objective ask reads ~1,250 trials at ~60-90 ms against
    ~13 ms at 2 objectives (bench/driver_scale.py), so its bound is 400 instead of 1,000."""
    from sweep.search.proposers import make_proposer

    space = load_space("fmnist-pareto")
    two = make_proposer("optuna", space, OBJECTIVES, 0, 100)
    three = make_proposer("optuna", space, parse_objectives("val_acc:max,params:min,latency_ms:min"), 0, 100)
    assert two.history == 1_000 and three.history == 400
    assert OptunaProposer(space, OBJECTIVES, 0, 100, history=None).history is None  # unbounded when asked


def test_tpe_history_bound_tokens_stay_unique_across_windows():
    space = load_space("fmnist-pareto")
    proposer = OptunaProposer(space, OBJECTIVES, 1, 200, history=20)
    seen = set()
    rng = random.Random(1)
    pending = []
    for _ in range(200):
        _, token = proposer.propose()
        assert token not in seen
        seen.add(token)
        pending.append(token)
        if len(pending) > 6:
            proposer.tell(pending.pop(0), [rng.random(), rng.uniform(1e4, 4e5)])
    assert proposer.windows > 3


def test_driver_overhead_model():
    bench = _bench()
    assert bench.driver_overhead({}, trials=200)["waiting_share"] == 0.0
    # 0.1 s of driver work per report, 10 reports per 60 s trial, 64 slots: 64 s of driver work per
    # 60 s of training, so the driver sets the pace (a trial's cycle is 64 s: 4 s of it waiting)
    busy = bench.driver_overhead({"log_epoch": [0.1]}, trials=1_000)
    assert busy["driver_busy"] > 0.9 and 0.05 < busy["waiting_share"] < 0.075, busy
    light = bench.driver_overhead({"log_epoch": [0.001]}, trials=500)  # 1 ms a report
    assert 0.0001 < light["waiting_share"] < 0.0005  # about its own 10 ms per 60 s trial


def test_the_benchmark_measures_at_tiny_sizes():
    bench = _bench()
    rungs = bench.measure_rungs((2, (20, 40), 5))
    assert set(rungs["sizes"]) == {"20", "40"} and rungs["sizes"]["40"]["decide"]["n"] == 5
    random_search = bench.measure_proposer(("random", (10,), 3))
    assert random_search["sizes"]["10"]["suggest"]["n"] == 3
