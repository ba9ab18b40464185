"""A per-trial wall-clock limit that also ends trials which hang without reporting.

Tune's stoppers only look at results, so a trial stuck in a deadlock or a dead data source
would hold its slot forever. Tune asks the scheduler which trial to run at every step of its
loop; these schedulers use that moment to stop every trial that has been running longer than
the limit (``stop_trial`` is part of the controller API Tune hands to schedulers). The actor of
a stopped trial that does not stop by itself is killed after ``TUNE_FORCE_TRIAL_CLEANUP_S``.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune.experiment import Trial


class TrialTimeLimitMixin:
    """Stops trials running longer than ``limit_s`` seconds (timed from when they start running)."""

    limit_s: float | None = None

    def set_time_limit(self, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self._running_since: dict[str, float] = {}

    def __setstate__(self, state: dict) -> None:  # a restored sweep times trials afresh
        self.__dict__.update(state)
        self._running_since = {}

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        if self.limit_s is not None:
            self._stop_overdue(tune_controller)
        return super().choose_trial_to_run(tune_controller)  # type: ignore[misc]

    def _stop_overdue(self, tune_controller: Any) -> None:
        now = time.monotonic()
        running = {t.trial_id: t for t in tune_controller.get_live_trials() if t.status == Trial.RUNNING}
        self._running_since = {tid: self._running_since.get(tid, now) for tid in running}
        for trial_id, since in list(self._running_since.items()):
            if now - since > self.limit_s:
                self._running_since.pop(trial_id)
                tune_controller.stop_trial(running[trial_id])
