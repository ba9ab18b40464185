"""The sweep's two repairs of Ray Tune's fault handling (sweep/tune/ray_fixes.py), on Tune's own
controller, trials and checkpoint manager.

The double failure is replayed as the chaos soak saw it: one actor death reported twice for one
trial. Without the repair the second report ends the trial ERROR with 2 failures counted (checked
against Ray 2.60's controller as it is); with it the trial stays PENDING to be retried, with 1.
The lost checkpoint is what a driver killed between a checkpoint's registration and the next
saved state leaves: the state names a folder that ``num_to_keep=1`` has deleted, and a newer one
is on storage (tests/test_faults_resume.py does the same to a real killed sweep and resumes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweep.training.checkpoint import CHECKPOINT_FILE
from sweep.tune import ray_fixes

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def ray_runtime() -> Any:
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    ray_fixes.install()
    yield ray
    if started:
        ray.shutdown()


def _controller_with_trial(tmp_path: Path, max_failures: int) -> tuple[Any, Any]:
    from ray import tune
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

    tune.register_trainable("resnetx_noop", lambda config: None)
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="experiment")
    controller = TuneController(storage=storage)
    trial = Trial("resnetx_noop", config={}, storage=storage, max_failures=max_failures,
                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1))  # as the sweep's Tuner keeps them
    controller.add_trial(trial)
    trial.init_local_path()
    controller._set_trial_status(trial, Trial.RUNNING)
    return controller, trial


def test_one_actor_death_reported_twice_is_one_failure(ray_runtime, tmp_path):
    from ray.exceptions import ActorDiedError

    controller, trial = _controller_with_trial(tmp_path, max_failures=3)
    death = ActorDiedError()
    controller._trial_task_failure(trial, death)  # the train future: recovered, to be retried
    assert (trial.status, trial.run_metadata.num_failures) == ("PENDING", 1)
    controller._trial_task_failure(trial, death)  # the dead actor's second future
    assert (trial.status, trial.run_metadata.num_failures) == ("PENDING", 1)


def test_a_death_with_no_retries_left_still_ends_the_trial(ray_runtime, tmp_path):
    from ray.exceptions import ActorDiedError

    controller, trial = _controller_with_trial(tmp_path, max_failures=0)
    controller._trial_task_failure(trial, ActorDiedError())
    assert (trial.status, trial.run_metadata.num_failures) == ("ERROR", 1)


def _pending_in_reset(tmp_path: Path, max_failures: int) -> tuple[Any, Any]:
    """A PENDING trial handed a cached actor whose ``reset`` is in flight (``_maybe_reuse_cached_actor``)."""
    from ray.tune.experiment import Trial

    controller, trial = _controller_with_trial(tmp_path, max_failures=max_failures)
    controller._set_trial_status(trial, Trial.PENDING)
    controller._staged_trials.add(trial)
    controller._resetting_trials.add(trial)
    return controller, trial


def test_a_reused_actor_dying_in_its_reset_is_a_failure_retried(ray_runtime, tmp_path):
    # The long chaos soak hung with 539 of 540 trials done: a worker killed while its cached actor
    # was being reset for a PENDING trial. Tune 2.60 ends such a trial ERROR whatever max_failures
    # says; dropping the report as stale left it in _resetting_trials, waiting forever.
    from ray.exceptions import ActorDiedError

    controller, trial = _pending_in_reset(tmp_path, max_failures=3)
    controller._trial_task_failure(trial, ActorDiedError())
    assert (trial.status, trial.run_metadata.num_failures) == ("PENDING", 1)
    assert trial not in controller._resetting_trials and trial not in controller._staged_trials
    assert controller._scheduler_alg.choose_trial_to_run(controller._wrapped()) is trial  # it is started again


def test_a_reset_death_with_no_retries_left_ends_the_trial(ray_runtime, tmp_path):
    from ray.exceptions import ActorDiedError

    controller, trial = _pending_in_reset(tmp_path, max_failures=0)
    controller._trial_task_failure(trial, ActorDiedError())
    assert (trial.status, trial.run_metadata.num_failures) == ("ERROR", 1)
    assert trial not in controller._resetting_trials


def test_a_pending_trial_keeps_other_failures():
    from ray.exceptions import ActorDiedError, RayTaskError

    assert ray_fixes.is_stale_actor_failure("PENDING", ActorDiedError())
    assert not ray_fixes.is_stale_actor_failure("RUNNING", ActorDiedError())
    assert not ray_fixes.is_stale_actor_failure("PENDING", RayTaskError("train", "tb", ValueError("x")))


def _checkpoint_folder(trial_dir: Path, index: int, content: bytes = b"weights") -> Path:
    folder = trial_dir / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_FILE).write_bytes(content)
    return folder


def test_the_newest_complete_later_checkpoint_is_found(tmp_path):
    import pyarrow.fs

    fs = pyarrow.fs.LocalFileSystem()
    _checkpoint_folder(tmp_path, 1)  # older than the missing one: never a replacement
    newer = _checkpoint_folder(tmp_path, 3)
    _checkpoint_folder(tmp_path, 4, content=b"")  # a copy cut short: skipped
    (tmp_path / "checkpoint_000005").mkdir()  # no checkpoint file at all: skipped
    missing = str(tmp_path / "checkpoint_000002")
    assert ray_fixes.newest_checkpoint_after(fs, missing) == (str(newer), 3)
    assert ray_fixes.newest_checkpoint_after(fs, str(tmp_path / "checkpoint_000006")) is None
    assert ray_fixes.newest_checkpoint_after(fs, str(tmp_path / "not-a-checkpoint")) is None


def test_a_trial_whose_saved_checkpoint_is_gone_restores_the_newest(ray_runtime, tmp_path):
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult

    _, trial = _controller_with_trial(tmp_path, max_failures=2)
    trial_dir = Path(trial.storage.trial_fs_path)
    named = _checkpoint_folder(trial_dir, 0)
    trial.on_checkpoint(_TrainingResult(checkpoint=Checkpoint(str(named)), metrics={"epoch": 1}))
    assert ray_fixes.repair_missing_checkpoint(trial) is False  # present: nothing to repair
    replacement = _checkpoint_folder(trial_dir, 1)  # epoch 2's, registered after the last saved state
    for item in named.iterdir():
        item.unlink()
    named.rmdir()  # ... which num_to_keep=1 deleted it for
    assert ray_fixes.repair_missing_checkpoint(trial) is True
    assert trial.checkpoint.path == str(replacement)
    assert trial.storage.current_checkpoint_index == 2  # the next checkpoint goes to a new folder
    assert replacement.exists()  # registering it did not delete it
    assert not named.exists()  # and the entry it replaced is gone from storage as from the manager


def test_a_state_write_cut_short_leaves_the_previous_state_whole(ray_runtime, tmp_path, monkeypatch):
    # Tune wrote experiment_state-*.json in place: the long soak's driver was killed mid-write and
    # the resume, unable to read it, started the sweep over (1 trial run of 540).
    import json

    import ray.tune.execution.tune_controller as tune_controller

    controller, _ = _controller_with_trial(tmp_path, max_failures=1)
    controller.save_to_dir()
    state = Path(controller.experiment_state_path)
    whole = state.read_text()
    assert json.loads(whole)["trial_data"]

    real_dump = json.dump

    def killed_halfway(obj, handle, **kwargs):  # the write stops half way, as a SIGKILL leaves it
        text = json.dumps(obj, **kwargs)
        handle.write(text[: len(text) // 2])
        raise OSError("killed while writing")

    monkeypatch.setattr(tune_controller.json, "dump", killed_halfway)
    with pytest.raises(OSError, match="killed"):
        controller.save_to_dir()
    monkeypatch.setattr(tune_controller.json, "dump", real_dump)
    assert state.read_text() == whole  # the previous state, whole
    assert ray_fixes.unreadable_state(str(state.parent)) is None  # the half-written file is not Tune's to find


def test_a_state_cut_short_by_an_older_writer_is_refused(tmp_path):
    assert ray_fixes.unreadable_state(str(tmp_path)) is None  # nothing saved: nothing to refuse
    (tmp_path / "experiment_state-2026-12-07_10-04-19.json").write_text('{"trial_data": [["{}", "{}"]]}')
    assert ray_fixes.unreadable_state(str(tmp_path)) is None
    cut = tmp_path / "experiment_state-2026-12-07_10-08-22.json"  # the newest: what Tune would restore
    cut.write_text('{"trial_data": [["{}", "{')
    assert ray_fixes.unreadable_state(str(tmp_path)) == str(cut)


def test_the_trial_list_is_in_place_before_the_searchers_state_is_saved(ray_runtime, tmp_path, monkeypatch):
    # Tune's order: trial list, then the searcher. A kill between them may leave a searcher behind
    # the trial list, never ahead of it (ahead, the restored searcher skips a network for good).
    import json

    from ray.tune.experiment import Trial

    controller, _ = _controller_with_trial(tmp_path, max_failures=1)
    controller.save_to_dir()
    controller.add_trial(Trial("resnetx_noop", config={"second": 1}, storage=controller._storage))
    state, seen = Path(controller.experiment_state_path), []
    search_cls = type(controller._search_alg)
    real_save = search_cls.save_to_dir

    def save_searcher(self, *args, **kwargs):
        seen.append(len(json.loads(state.read_text())["trial_data"]))
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(search_cls, "save_to_dir", save_searcher)
    controller.save_to_dir()
    assert seen == [2]


def test_a_resume_shows_the_restored_searcher_tunes_restored_trial_list(ray_runtime, tmp_path):
    # The long soak's lost network: the searcher's state held a trial that the trial list saved
    # with it lacked. On a real TuneController.resume the repair hands the searcher Tune's list, and
    # the searcher hands that trial's network out again (tests/test_searcher.py: what it does with
    # each disagreement).
    from ray import tune
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial
    from ray.tune.search import SearchGenerator

    from reports.pareto import parse_objectives
    from search_spaces import load_space
    from sweep.search.proposers import make_proposer
    from sweep.tune.searcher import ResNetXSearcher

    objectives, space = parse_objectives("val_acc:max,params:min"), load_space("quick")

    def fresh() -> ResNetXSearcher:
        return ResNetXSearcher(space, make_proposer("random", space, objectives, 0, 8), objectives, 0)

    tune.register_trainable("resnetx_noop", lambda config: None)
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="experiment")
    searcher = fresh()
    configs = [searcher.suggest(f"t{i}") for i in range(3)]
    killed = TuneController(storage=storage, search_alg=SearchGenerator(searcher))
    for i in range(2):  # the trial list lacks t2, which the searcher handed out
        killed.add_trial(Trial("resnetx_noop", config=configs[i], trial_id=f"t{i}", storage=storage))
    killed.checkpoint(force=True, wait=True)  # saved and synced where a resume reads it

    resumed_searcher = fresh()
    resumed = TuneController(storage=StorageContext(storage_path=str(tmp_path), experiment_dir_name="experiment"),
                             search_alg=SearchGenerator(resumed_searcher))
    resumed.resume(tune.ResumeConfig())
    assert {t.trial_id for t in resumed._trials} == {"t0", "t1"}
    assert set(resumed_searcher.live) == {"t0", "t1"}
    assert resumed_searcher.suggest("t7") == configs[2]  # t2's network, not lost
