"""Knowing, after ``Tuner.fit()`` returns, whether the user interrupted the sweep (Ctrl-C).

Tune catches the first SIGINT, saves its state and stops every running trial as if it had
ended, so neither the trial statuses nor the ``ResultGrid`` tell an interrupted sweep from a
finished one. :func:`watch_sigint` is called from a callback's ``setup`` (after Tune installed
its handler) and chains a handler that records the interrupt in a per-process event;
:func:`sigint_restored` wraps a sweep and puts back the handler found before it (Tune installs
its own in ``fit`` and never removes it), so a notebook that ran a sweep keeps its own Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

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


@contextlib.contextmanager
def sigint_restored() -> Iterator[None]:
    """Run the block, then put back the SIGINT handler that was installed before it.

    Both Tune's handler and :func:`watch_sigint`'s are installed inside the block; neither
    outlives it. Outside the main thread there is no handler to keep, and nothing is changed.
    """
    try:
        before = signal.getsignal(signal.SIGINT)
    except ValueError:
        before = None
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, before)


def interrupted() -> bool:
    return _interrupted.is_set()
