"""The sweep driver killed with SIGKILL, then ``resnetx sweep --resume``: nothing lost, nothing twice.

Two sweeps with the same seed run side by side with the deterministic stand-in trainable: a
reference that runs undisturbed, and a victim whose driver process is SIGKILLed once two of its
trials have finished (then the Ray processes it left are killed too, as a crashed machine
would). A plain ``resnetx sweep --resume`` (no other options: the sweep's own settings are
recorded) must finish the victim with exactly the reference's trials and Pareto front.

``--search random`` on purpose: random proposals depend only on (seed, index), so the set of
trials is the same whatever order trials finish in. Optuna's proposals depend on which results
had arrived before each ask, so with 2 trials at a time an interrupted and an uninterrupted
sweep may legitimately try different configs (with ``--max-concurrent 1`` they would not).
"""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from reports import schema
from sweep.cli import main
from tests.test_faults_common import (
    attempts,
    fresh_runs_dir,
    kill_session,
    lose_queued_writes,
    lose_saved_checkpoints,
    query,
    runs_of,
    saved_checkpoints,
    standin_env,
    steps,
    sweep_process,
    trial_runs_with_status,
    tune_trials,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]
SAMPLES, EPOCHS = 6, 3
ARGS = ["--trainable", "synthetic", "--num-samples", str(SAMPLES), "--max-concurrent", "2", "--search", "random",
        "--seed", "3", "--set", f"train.epochs={EPOCHS}"]


def _front(runs_dir: Path, parent_id: str) -> set[tuple[str, str, str]]:
    with open(runs_dir / "reports" / parent_id / "pareto.csv") as handle:
        return {(row[schema.TAG_CONFIG_HASH], row["val_acc"], row["params"]) for row in csv.DictReader(handle)
                if row["on_front"] == "True"}


def _tune_folder(runs_dir: Path) -> Path:
    """The sweep's Tune folder, as its parent run's ``tune_path`` tag names it."""
    rows = query(runs_dir / "mlflow.db", "SELECT value FROM tags WHERE key = 'tune_path'")
    if not rows:
        raise LookupError("no tune_path tag yet")
    return Path(rows[0][0])


def _a_running_trial_checkpointed(runs_dir: Path) -> bool:
    """Tune's saved state names a checkpoint, still on storage, of a trial that has not finished."""
    try:
        saved = saved_checkpoints(_tune_folder(runs_dir))
    except (LookupError, ValueError, OSError, KeyError):  # no state yet, or read while Tune rewrote it
        return False
    return any(status != "TERMINATED" and path.exists() for status, path in saved.values())


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Any:
    root = tmp_path_factory.mktemp("driver-kill")
    ref_dir, victim_dir = fresh_runs_dir(root / "reference"), fresh_runs_dir(root / "victim")
    options = {"epoch_s": 0.5}
    reference = sweep_process(ref_dir, ARGS, standin_env(**options, attempts_dir=str(root / "attempts-ref")))
    victim = sweep_process(victim_dir, ARGS, standin_env(**options, attempts_dir=str(root / "attempts")))
    started = time.monotonic()
    try:
        db = victim_dir / "mlflow.db"
        def ready() -> bool:
            return trial_runs_with_status(db, "FINISHED") >= 2 and _a_running_trial_checkpointed(victim_dir)

        assert wait_for(lambda: ready() or victim.poll() is not None, 300)
        assert victim.poll() is None, victim.stdout.read()
        os.kill(victim.pid, signal.SIGKILL)  # the driver only
        victim.wait(timeout=30)
        time.sleep(1.0)
    finally:
        kill_session(victim)  # then whatever Ray processes it left behind
    killed_at = time.monotonic() - started
    lost = lose_saved_checkpoints(_tune_folder(victim_dir))  # what a kill a moment later would leave
    unsent = lose_queued_writes(victim_dir / "mlflow.db", _tune_folder(victim_dir))  # and with writes queued
    _, before, _ = runs_of(victim_dir)
    finished_before = {c.data.tags[schema.TAG_CONFIG_HASH]: c.info.end_time for c in before
                       if c.info.status == "FINISHED"}
    out, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, out[-3000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNETX_STANDIN", standin_env(**options, attempts_dir=str(root / "attempts"))["RESNETX_STANDIN"])
        resume_started = time.monotonic()
        rc = main(["sweep", "--resume", "--runs-dir", str(victim_dir)])
        resume_s = time.monotonic() - resume_started
    parents, children, client = runs_of(victim_dir)
    ref_parents, ref_children, _ = runs_of(ref_dir)
    return {"rc": rc, "parents": parents, "children": children, "client": client, "killed_at": killed_at,
            "resume_s": resume_s, "lost": lost, "unsent": unsent, "before": before, "finished_before": finished_before,
            "trials": tune_trials(parents[0].data.tags["tune_path"]), "attempts": attempts(root / "attempts"),
            "front": _front(victim_dir, parents[0].info.run_id), "ref_children": ref_children,
            "ref_front": _front(ref_dir, ref_parents[0].info.run_id)}


def test_resume_finishes_the_killed_sweep(sweeps):
    # killed mid-sweep, with 2 runs finished: one of them is reopened by lose_queued_writes
    assert 1 <= len(sweeps["finished_before"]) < SAMPLES
    assert sweeps["rc"] == 0
    assert len(sweeps["parents"]) == 1 and sweeps["parents"][0].info.status == "FINISHED"
    children = sweeps["children"]
    assert all(c.info.status == "FINISHED" for c in children), [c.info.status for c in children]
    print(f"driver killed at {sweeps['killed_at']:.1f} s with {len(sweeps['finished_before'])} trials finished; "
          f"resume took {sweeps['resume_s']:.1f} s")


def test_the_trial_budget_holds_and_each_trial_has_one_run(sweeps):
    children = sweeps["children"]
    assert len(children) == SAMPLES
    assert len({c.data.tags[schema.TAG_TRIAL_ID] for c in children}) == SAMPLES
    assert len({c.data.tags[schema.TAG_CONFIG_HASH] for c in children}) == SAMPLES
    assert len(sweeps["trials"]) == SAMPLES and {t["status"] for t in sweeps["trials"]} == {"TERMINATED"}
    assert len(sweeps["attempts"]) == SAMPLES  # no config beyond the budget was ever trained
    for child in children:  # no epoch logged twice
        assert steps(sweeps["client"], child.info.run_id) == list(range(1, EPOCHS + 1))


def test_no_finished_trial_reruns(sweeps):
    after = {c.data.tags[schema.TAG_CONFIG_HASH]: c for c in sweeps["children"]}
    for config_hash, end_time in sweeps["finished_before"].items():
        assert after[config_hash].info.end_time == end_time  # its run was not reopened or rewritten
        # Tune may re-schedule a trial that finished after its last saved state: it then restores
        # the final checkpoint and trains nothing (an attempt starting at the last epoch)
        assert all(start == EPOCHS for start in sweeps["attempts"][config_hash][1:]), sweeps["attempts"][config_hash]
    for config_hash, starts in sweeps["attempts"].items():  # a retried trial never goes back
        assert starts == sorted(starts), (config_hash, starts)


def test_the_front_equals_the_uninterrupted_sweeps(sweeps):
    assert sweeps["front"] and sweeps["front"] == sweeps["ref_front"]
    trained = {(c.data.tags[schema.TAG_CONFIG_HASH], c.data.metrics["val_acc"]) for c in sweeps["children"]}
    reference = {(c.data.tags[schema.TAG_CONFIG_HASH], c.data.metrics["val_acc"]) for c in sweeps["ref_children"]}
    assert trained == reference


def test_a_trial_whose_saved_checkpoint_was_deleted_resumes_from_the_newer_one(sweeps):
    # Before sweep/tune/ray_fixes.py every restore of such a trial failed ("does not exist on storage
    # anymore") until its retries ran out: ERROR, its network never finished in that sweep.
    assert sweeps["lost"], "no unfinished trial had a checkpoint when the driver was killed"
    trials = {t["trial_id"]: t for t in sweeps["trials"]}
    for trial_id in sweeps["lost"]:
        assert trials[trial_id]["status"] == "TERMINATED" and trials[trial_id]["num_failures"] == 0, trials[trial_id]


def test_writes_a_killed_driver_had_queued_are_repaired_on_resume(sweeps):
    # sweep/tracking/writer.py sends MLflow writes from a background thread: a driver killed with
    # writes queued leaves an ended trial's run open without its last epoch and finals, and running
    # trials' runs short of the epochs their checkpoints hold. --resume fills both in.
    # an ended trial is there at every kill; a running trial with an open run and a checkpoint only
    # when the kill found one (the wait asks for it, but its run may close before the kill lands)
    assert sweeps["unsent"]["ended"], sweeps["unsent"]
    by_trial = {c.data.tags[schema.TAG_TRIAL_ID]: c for c in sweeps["children"]}
    reference = {c.data.tags[schema.TAG_CONFIG_HASH]: c for c in sweeps["ref_children"]}
    for trial_id in sweeps["unsent"]["ended"] + sweeps["unsent"]["running"]:
        run = by_trial[trial_id]
        assert run.info.status == "FINISHED" and run.data.tags[schema.TAG_STATUS] == "finished", trial_id
        assert steps(sweeps["client"], run.info.run_id) == list(range(1, EPOCHS + 1)), trial_id
        assert steps(sweeps["client"], run.info.run_id, "train_loss") == list(range(1, EPOCHS + 1)), trial_id
        twin = reference[run.data.tags[schema.TAG_CONFIG_HASH]]
        for key in ("val_acc", "best_val_acc", "params", schema.EPOCHS_METRIC):
            assert run.data.metrics[key] == twin.data.metrics[key], (trial_id, key)
