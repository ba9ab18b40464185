"""Four repairs of Ray Tune 2.60's fault handling, found by the chaos soak (docs/reliability.md).

All are in Tune's controller (the driver), all were measured to lose networks from a sweep, and
none has a setting that avoids it, so the sweep installs them before it builds its Tuner:

* **A second failure report for one actor death ends the trial.** When a trial's actor dies with
  two of its tasks in flight (a reused actor's reset beside the previous trial's last task, or a
  checkpoint's ``save`` beside ``train``), both futures fail. The first failure finds the trial
  RUNNING and recovers it (PENDING, to be restarted from its checkpoint); the second finds it
  PENDING and ends it ERROR, whatever ``max_failures`` says (``TuneController.
  _process_trial_failure``). A PENDING trial runs no task of its own (Tune sets a trial whose
  actor fails to start RUNNING before it reports that failure), so an actor-death report for a
  PENDING trial is the dead actor's leftover: :func:`ignore_stale_actor_failures` drops it.
  One exception, found by the long soak: a PENDING trial handed a cached (reused) actor runs that
  actor's ``reset``; if the actor dies there, the report is the trial's own. Dropped, the trial
  waited for its reset forever and the sweep never ended; Tune itself ends it ERROR. It is made
  RUNNING and unstaged first (:func:`recover_failed_reset`), as Tune does for a new actor that
  fails to start, so the failure counts against ``max_failures`` and the trial is retried.

* **The checkpoint Tune's saved state names can be deleted before the state is saved again.**
  With ``CheckpointConfig(num_to_keep=1)``, registering epoch k+1's checkpoint deletes epoch
  k's at once, while the experiment state that names the new one is written later (and synced
  asynchronously). A driver killed in between leaves a state naming a folder that is gone, and
  every restore of that trial fails ("does not exist on storage anymore") until its retries run
  out. :func:`restore_from_newest_checkpoint` points such a trial at the newest complete
  checkpoint folder that is still in its trial folder (the one that replaced it) before its
  actor starts, and moves the trial's checkpoint index past it so that the next checkpoint is
  not written into that folder.

* **The experiment state is written in place.** A driver killed while Tune writes it leaves half
  a JSON file, and the resume silently starts the sweep over. :func:`save_experiment_state_atomically`
  writes it under a temporary name and renames it; ``sweep.tune.runner`` refuses to resume from a
  state cut short by an older writer, instead of letting Tune start again.

* **The trial list and the searcher's state are two saves.** A driver killed between them
  resumes a searcher that disagrees with Tune's trial list (the long soak lost a network so):
  :func:`reconcile_searcher_on_resume` shows the restored searcher the restored trial list
  (``SearchCore.reconcile`` says what it does with each disagreement).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from sweep.training.checkpoint import CHECKPOINT_FILE  # what every trainable of this project writes

logger = logging.getLogger(__name__)

CHECKPOINT_FOLDER = re.compile(r"^checkpoint_(\d{6})$")
_INSTALLED = "_resnetx_fixed"


def is_stale_actor_failure(trial_status: str, exception: BaseException) -> bool:
    """A task failure that belongs to an actor the trial has already been recovered from."""
    from ray.exceptions import RayActorError
    from ray.tune.experiment import Trial

    return trial_status == Trial.PENDING and isinstance(exception, RayActorError)


def newest_checkpoint_after(filesystem: Any, missing_path: str) -> tuple[str, int] | None:
    """The newest ``checkpoint_NNNNNN`` beside ``missing_path`` with a later index and a
    non-empty checkpoint file, as (path, index); None when there is none."""
    import pyarrow.fs

    parent, _, name = missing_path.rstrip("/").rpartition("/")
    named = CHECKPOINT_FOLDER.match(name)
    if not parent or named is None:
        return None
    listing = filesystem.get_file_info(pyarrow.fs.FileSelector(parent, allow_not_found=True))
    later = sorted(((int(m.group(1)), info.path) for info in listing
                    if info.type == pyarrow.fs.FileType.Directory
                    and (m := CHECKPOINT_FOLDER.match(info.base_name)) and int(m.group(1)) > int(named.group(1))),
                   reverse=True)
    for index, path in later:
        file_info = filesystem.get_file_info(f"{path}/{CHECKPOINT_FILE}")
        if file_info.type == pyarrow.fs.FileType.File and (file_info.size or 0) > 0:
            return path, index
    return None


def repair_missing_checkpoint(trial: Any) -> bool:
    """Point ``trial`` at the newest checkpoint still on storage when the one it names is gone."""
    from ray.train import Checkpoint
    from ray.train._internal.session import _TrainingResult
    from ray.train._internal.storage import _exists_at_fs_path

    latest = trial.run_metadata.checkpoint_manager.latest_checkpoint_result
    if latest is None or latest.checkpoint is None:
        return False
    checkpoint = latest.checkpoint
    if _exists_at_fs_path(checkpoint.filesystem, checkpoint.path):
        return False
    found = newest_checkpoint_after(checkpoint.filesystem, checkpoint.path)
    if found is None:
        return False
    path, index = found
    replacement = _TrainingResult(checkpoint=Checkpoint(path, filesystem=checkpoint.filesystem),
                                  metrics=dict(latest.metrics))
    # Registering the replacement deletes the older entries beyond num_to_keep, the missing one
    # among them, and Tune's delete raises on a path that is not there: give it an empty folder.
    checkpoint.filesystem.create_dir(checkpoint.path)
    trial.run_metadata.checkpoint_manager.register_checkpoint(replacement)
    trial.storage.current_checkpoint_index = index + 1
    trial.invalidate_json_state()
    logger.warning("trial %s: its saved checkpoint %s is gone; restoring from %s", trial, checkpoint.path, path)
    return True


def _wrap(cls: type, name: str, make: Callable[[Callable], Callable]) -> None:
    original = getattr(cls, name)
    if getattr(original, _INSTALLED, False):
        return
    wrapped = functools.wraps(original)(make(original))
    setattr(wrapped, _INSTALLED, True)
    setattr(cls, name, wrapped)


def ignore_stale_actor_failures(controller_cls: type) -> None:
    def make(original: Callable) -> Callable:
        def _trial_task_failure(self: Any, trial: Any, exception: Exception) -> None:
            from ray.tune.experiment import Trial

            resetting = getattr(self, "_resetting_trials", set())
            if trial.status == Trial.PENDING and trial in resetting:
                recover_failed_reset(self, trial)
            elif is_stale_actor_failure(trial.status, exception):
                logger.warning("trial %s: a second failure report of its dead actor ignored (already recovered)",
                               trial)
                return
            original(self, trial, exception)
        return _trial_task_failure
    _wrap(controller_cls, "_trial_task_failure", make)


def recover_failed_reset(controller: Any, trial: Any) -> None:
    """Make a PENDING trial whose reused actor died during its ``reset`` recoverable, as a new actor
    that fails to start is (``TuneController._actor_failed``): unstaged and RUNNING, so the failure
    that follows counts against ``max_failures`` and retries it. Tune leaves it in
    ``_resetting_trials`` and ends it ERROR, whatever ``max_failures`` says; dropped as a stale
    report instead, it would wait for that reset forever and the sweep would never end (the long
    chaos soak hung so, 539 of 540 trials done)."""
    from ray.tune.experiment import Trial

    controller._resetting_trials.discard(trial)
    controller._set_trial_status(trial, Trial.RUNNING)
    controller._unstage_trial_with_resources(trial)


def restore_from_newest_checkpoint(controller_cls: type) -> None:
    def make(original: Callable) -> Callable:
        def _schedule_trial_actor(self: Any, trial: Any) -> None:
            repair_missing_checkpoint(trial)
            original(self, trial)
        return _schedule_trial_actor
    _wrap(controller_cls, "_schedule_trial_actor", make)


WRITING_PREFIX = ".writing-"  # Tune's state is written under this name, then renamed into place


def save_experiment_state_atomically(controller_cls: type) -> None:
    """Tune writes ``experiment_state-*.json`` in place (``save_to_dir``: ``open(path, "w")``), at
    every trial checkpoint with ``num_to_keep=1``, 2 MB for a sweep of 540 trials. A driver killed
    while writing it leaves half a file, which ``Tuner.restore`` cannot read: Tune then logs
    "Failed to restore the run state" and *starts the sweep over* (the long chaos soak's resume
    ran 1 new trial and ended). Written under a temporary name, flushed, then renamed, a killed
    write leaves the previous state whole."""
    if getattr(controller_cls, "_resnetx_atomic_state", False):
        return
    name_of = controller_cls.experiment_state_file_name.fget

    def experiment_state_file_name(self: Any) -> str:
        return (WRITING_PREFIX if getattr(self, "_resnetx_writing", False) else "") + name_of(self)

    def make(original: Callable) -> Callable:
        def save_to_dir(self: Any) -> None:
            import os
            from pathlib import Path

            folder = Path(self._storage.experiment_driver_staging_path)
            committed = []

            def commit() -> None:  # the trial list in place before the searcher's state, in Tune's order
                if committed:
                    return
                self._resnetx_writing = False
                written = folder / (WRITING_PREFIX + name_of(self))
                with open(written, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(written, folder / name_of(self))
                committed.append(True)

            search_alg = self._search_alg
            search_save = search_alg.save_to_dir

            def commit_then_save_searcher(*args: Any, **kwargs: Any) -> Any:
                commit()  # a kill after this leaves the new trial list with the old searcher, as Tune's own order does
                return search_save(*args, **kwargs)

            self._resnetx_writing = True
            search_alg.save_to_dir = commit_then_save_searcher
            try:
                original(self)
            finally:
                self._resnetx_writing = False
                del search_alg.save_to_dir  # the class's method again
            commit()
        return save_to_dir

    controller_cls.experiment_state_file_name = property(experiment_state_file_name)  # type: ignore[attr-defined]
    _wrap(controller_cls, "save_to_dir", make)
    controller_cls._resnetx_atomic_state = True  # type: ignore[attr-defined]


def restored_trials(trials: list[Any]) -> dict[str, Any]:
    """Tune's restored trials as the searcher reads them (``sweep.search.core.RestoredTrial``)."""
    from ray.tune.experiment import Trial

    from sweep.search.core import RestoredTrial

    return {t.trial_id: RestoredTrial(config=dict(t.config), ended=t.status in (Trial.TERMINATED, Trial.ERROR),
                                      errored=t.status == Trial.ERROR, last_result=t.last_result or None)
            for t in trials}


def reconcile_searcher_on_resume(controller_cls: type) -> None:
    def make(original: Callable) -> Callable:
        def resume(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            searcher = getattr(self._search_alg, "searcher", None)  # SearchGenerator wraps ours
            reconcile = getattr(searcher, "reconcile", None)  # a searcher of another kind has none
            if callable(reconcile):
                mended = reconcile(restored_trials(self._trials))
                if any(mended.values()):
                    logger.warning("the restored searcher disagreed with Tune's trial list (the driver was killed "
                                   "between the two saves); mended: %s",
                                   ", ".join(f"{n} {what}" for what, n in mended.items() if n))
        return resume

    _wrap(controller_cls, "resume", make)


def unreadable_state(tune_path: str) -> str | None:
    """The newest experiment state in ``tune_path`` when it cannot be read (cut short), else None.

    ``Tuner.restore`` would log the error and start the sweep over; the runner refuses instead."""
    import json

    from ray.train._internal.storage import get_fs_and_path
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint

    newest = _find_newest_experiment_checkpoint(tune_path)
    if newest is None:
        return None
    fs, path = get_fs_and_path(newest)
    try:
        with fs.open_input_stream(path) as handle:
            json.loads(handle.readall())
    except (ValueError, OSError):
        return newest
    return None


def install() -> None:
    """Install the repairs on Tune's controller (idempotent; the driver process only)."""
    from ray.tune.execution.tune_controller import TuneController

    for method in ("_trial_task_failure", "_schedule_trial_actor", "save_to_dir", "resume"):
        if not callable(getattr(TuneController, method, None)):  # another Ray: say so, do not guess
            logger.warning("Ray Tune's TuneController has no %s: the sweep's fault repairs are not installed", method)
            return
    if not isinstance(getattr(TuneController, "experiment_state_file_name", None), property):
        logger.warning("Ray Tune's TuneController names its state differently: the sweep's fault repairs are not "
                       "installed")
        return
    ignore_stale_actor_failures(TuneController)
    restore_from_newest_checkpoint(TuneController)
    save_experiment_state_atomically(TuneController)
    reconcile_searcher_on_resume(TuneController)
