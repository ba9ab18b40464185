"""Knowing, after ``Tuner.fit()`` returns, whether the user interrupted the sweep (Ctrl-C).

Tune catches the first SIGINT, saves its state and stops every running trial as if it had
ended, so neither the trial statuses nor the ``ResultGrid`` tell an interrupted sweep from a
finished one. :func:`watch_sigint` is called from a callback's ``setup`` (after Tune installed
its handler) and chains a handler that records the interrupt in a per-process event.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_interrupted = threading.Event()


def watch_sigint() -> None:
    """Record SIGINT in :func:`interrupted`, then let the previous (Tune's) handler act."""
    _interrupted.clear()
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:
        return

    def handler(signum, frame):
        _interrupted.set()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread: nothing to watch
        signal.signal(signal.SIGINT, handler)


def interrupted() -> bool:
    return _interrupted.is_set()
