"""Retrying MLflow calls on SQLite lock contention: the one copy, used by reports and sweep.

A report may run while a sweep is still writing to the same SQLite store, and a sweep's
writers share it too. It lives here because dependencies point one way (sweep -> reports):
``sweep.tracking.store.with_retry`` is this ``retry``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def is_lock_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}".lower()
    return "database is locked" in text or "database table is locked" in text


def retry(fn: Callable[[], T], attempts: int = 10, base_delay: float = 0.05) -> T:
    """Call ``fn``; on SQLite lock contention back off (jittered, exponential) and try again."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts - 1 or not is_lock_error(exc):
                raise
            time.sleep(base_delay * (2 ** min(attempt, 6)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def client(tracking_uri: str):
    """An ``MlflowClient`` (imported here so that importing ``reports`` stays light)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)
