"""Chaos soak (short): a sweep under a stream of SIGKILLs loses no trial, trains none twice, leaves none RUNNING.

One stand-in sweep (``--trainable synthetic``, ``--search grid`` over every network of a finite
space: 38 trials, 4 epochs each, 8 at a time at 0.25 CPU) logs to a real ``mlflow server`` on
sqlite while ``tests/support/chaos.py`` SIGKILLs a random trial worker every 3-6 s, SIGKILLs the
driver once 30% of the trials have finished (then ``resnetx sweep --resume``), and SIGKILLs and
restarts the MLflow server once 60% have. The expected outcome comes from walking the sweep's
searcher dry over the same plan (no Ray): the exact set of networks and the exact counts of its
proposals. ``bench/chaos_soak.py`` is the long version (540 trials, 16 at a time;
docs/reliability.md has its figures).

Also here, the fault behind a bug the soak's server restart can hit (found reading what a restart
does to a request in flight): MLflow's HTTP client re-sends a ``create_run`` whose answer was lost,
and without a creation token the first run stayed RUNNING forever beside the second.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.chaos import AnswerLosingProxy, MlflowServer, SoakSettings, check, run_soak, soak_space, summary
from tests.test_faults_common import query

pytestmark = [pytest.mark.faults, pytest.mark.slow]
# 38 networks (basic units only): the 86 of basic and bottleneck units took 235 s of the suite's 19 min
SETTINGS = SoakSettings(space_text=soak_space(["basic"], [8, 16], [0.1], epochs=4),
                        concurrent=8, cpus_per_trial=0.25, epoch_s=0.3, kill_every_s=(3.0, 6.0),
                        driver_kill_at=0.3, server_restart_at=0.6, timeout_s=540)


@pytest.fixture(scope="module")
def soak(tmp_path_factory) -> Any:
    run = run_soak(tmp_path_factory.mktemp("chaos-soak"), SETTINGS)
    figures, problems = check(run)
    print(summary(figures))
    return {"run": run, "figures": figures, "problems": problems}


def test_the_chaos_happened_and_the_sweep_finished(soak):
    figures, problems = soak["figures"], soak["problems"]
    assert "driver" not in problems, problems["driver"]
    assert figures["driver_kills"] == 1 and figures["server_restarts"] == 1, soak["run"].events
    assert figures["workers_killed"] >= 3, soak["run"].events
    assert figures["trials"] == figures["expected"] == 38


def test_every_network_has_exactly_one_finished_run_with_its_whole_history(soak):
    problems = soak["problems"]
    for kind in ("parent", "runs_lost", "runs_twice", "runs_extra", "run_status", "trial_ids", "history",
                 "rewritten"):
        assert kind not in problems, problems[kind]


def test_tune_and_the_stand_in_trained_each_network_once(soak):
    problems = soak["problems"]
    for kind in ("tune_trials", "tune_status", "attempts_set", "attempts_order"):
        assert kind not in problems, problems[kind]


def test_the_searchers_counts_add_up_and_equal_the_dry_walk(soak):
    problems = soak["problems"]
    for kind in ("stats_missing", "stats_sum", "stats_dry", "stats_parent"):
        assert kind not in problems, problems[kind]
    stats = soak["figures"]["search_stats"]
    assert stats["duplicates"] > 0 and stats["infeasible"] > 0  # the space exercises both


def test_no_other_problem(soak):
    known = ("tune_double_failure", "tune_checkpoint_gone")  # Ray Tune's own two: the tests below
    assert {k: v for k, v in soak["problems"].items() if k not in known} == {}


def test_no_trial_failed_for_good_by_one_worker_death(soak):
    # Ray 2.60 Tune ended such a trial ERROR whatever --max-failures (about once per 240 kills);
    # sweep/tune/ray_fixes.py drops the dead actor's second report (tests/test_ray_fixes.py replays it)
    assert "tune_double_failure" not in soak["problems"], soak["problems"]["tune_double_failure"]


def test_a_create_run_sent_twice_leaves_one_run_and_none_running(tmp_path):
    """sweep/tracking/store.py ``RunLogger.start``: the server commits a run, its answer is lost (the
    server killed right after its commit, a read timeout), MLflow's client sends the request again
    (it retries POSTs: urllib3 ``allowed_methods=None``). Before the fix: two active runs for one
    trial, the one nobody holds RUNNING forever. Now the twin is closed KILLED and deleted."""
    from sweep.tracking.store import RunLogger, prepare_store

    server = MlflowServer(tmp_path)
    server.start()
    proxy = AnswerLosingProxy(server.uri, lose="/api/2.0/mlflow/runs/create")
    try:
        experiment_id = prepare_store(proxy.uri, "chaos")
        logger = RunLogger.start(proxy.uri, experiment_id, name="trial-x", tags={"role": "trial", "trial_id": "x"})
        logger.end()
        assert proxy.lost  # the server's answer really was lost, and the run was created twice
        rows = query(server.db, "SELECT run_uuid, status, lifecycle_stage FROM runs")
        assert len(rows) == 2
        active = [(run_id, status) for run_id, status, stage in rows if stage == "active"]
        assert active == [(logger.run_id, "FINISHED")]
        assert all(status != "RUNNING" for _, status, _ in rows)
    finally:
        proxy.close()
        server.kill()


def test_no_trial_lost_its_checkpoint_to_the_driver_kill(soak):
    # num_to_keep=1 deletes the checkpoint Tune's saved state names before that state is saved again
    # (seen after 1 of 3 driver kills); sweep/tune/ray_fixes.py restores such a trial from the newer one
    assert "tune_checkpoint_gone" not in soak["problems"], soak["problems"]["tune_checkpoint_gone"]
