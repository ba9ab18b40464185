"""A trial's status, how it ends its MLflow run, and whether its result may be ranked: one place.

The status names themselves are the MLflow contract (``reports.schema``); the rules that derive
them from Tune's view of a trial live here, so the MLflow callback, the progress lines and the
runner's summary cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reports import schema

# Terminal status -> the MLflow run status it closes with.
TERMINAL_RUN_STATUS = {
    schema.STATUS_FINISHED: "FINISHED",
    schema.STATUS_STOPPED: "FINISHED",
    schema.STATUS_DIVERGED: "FAILED",
    schema.STATUS_FAILED: "FAILED",
}
# Statuses a trial reports itself when it ends without being stopped.
SELF_ENDED = (schema.STATUS_FINISHED, schema.STATUS_DIVERGED, schema.STATUS_FAILED)
# Statuses whose metrics say nothing about the network (no accuracy to rank or to show).
UNRANKABLE_RESULTS = (schema.STATUS_DIVERGED, schema.STATUS_FAILED)


def trial_epochs(config: Mapping[str, Any] | None) -> int | None:
    """The number of epochs a trial's config asks for (``config["experiment"]["train"]["epochs"]``)."""
    epochs = ((config or {}).get("experiment") or {}).get("train", {}).get("epochs")
    return int(epochs) if isinstance(epochs, int) else None


def trial_status(last: Mapping[str, Any] | None, epochs: int | None, errored: bool) -> str:
    """What happened to a trial, from its last result (pure; tested on its own)."""
    if errored:
        return schema.STATUS_FAILED
    if not last or "status" not in last:  # never reported (e.g. a hang ended by the time limit)
        return schema.STATUS_FAILED
    status = last.get("status")
    if status in UNRANKABLE_RESULTS:
        return str(status)
    if status == schema.STATUS_FINISHED or (epochs is not None and last.get("epoch", 0) >= epochs):
        return schema.STATUS_FINISHED
    return schema.STATUS_STOPPED


def ran_to_the_end(last: Mapping[str, Any] | None, epochs: int | None) -> bool:
    """True when the last result says the trial finished, diverged or failed by itself."""
    last = last or {}
    return last.get("status") in SELF_ENDED or (epochs is not None and last.get("epoch", 0) >= epochs)


def is_completed_status(status: str) -> bool:
    """Did a trial with this final status end as it should (finished, or stopped by the scheduler)?"""
    return status in schema.COMPLETED_STATUSES


def is_rankable_status(status: str) -> bool:
    """May a trial with this final status be ranked (on a front, in a hypervolume)? The report's rule."""
    return status in schema.RANKABLE_STATUSES


def result_has_accuracy(result: Mapping[str, Any]) -> bool:
    """Does an intermediate result carry a meaningful accuracy (not a failed or diverged report)?"""
    return result.get("status") not in UNRANKABLE_RESULTS
