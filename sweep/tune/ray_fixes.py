"""Two repairs of Ray Tune 2.60's fault handling, found by the chaos soak (docs/reliability.md).

Both are in Tune's controller (the driver), both were measured to lose a network from a sweep,
and neither has a setting that avoids it, so the sweep installs them before it builds its Tuner:

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
            resetting = getattr(self, "_resetting_trials", set())
            if trial.status == "PENDING" and trial in resetting:
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
    controller._resetting_trials.discard(trial)
    controller._set_trial_status(trial, "RUNNING")
    controller._unstage_trial_with_resources(trial)


def restore_from_newest_checkpoint(controller_cls: type) -> None:
    def make(original: Callable) -> Callable:
        def _schedule_trial_actor(self: Any, trial: Any) -> None:
            repair_missing_checkpoint(trial)
            original(self, trial)
        return _schedule_trial_actor
    _wrap(controller_cls, "_schedule_trial_actor", make)


def install() -> None:
    """Install both repairs on Tune's controller (idempotent; the driver process only)."""
    from ray.tune.execution.tune_controller import TuneController

    for method in ("_trial_task_failure", "_schedule_trial_actor"):
        if not callable(getattr(TuneController, method, None)):  # another Ray: say so, do not guess
            logger.warning("Ray Tune's TuneController has no %s: the sweep's fault repairs are not installed", method)
            return
    ignore_stale_actor_failures(TuneController)
    restore_from_newest_checkpoint(TuneController)
