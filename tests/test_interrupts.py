"""The sweep's Ctrl-C watch is chained for the sweep only: afterwards the caller's handler is back."""

from __future__ import annotations

import signal


def test_the_previous_sigint_handler_is_back_after_the_sweep():
    from sweep.tune.interrupts import interrupted, sigint_restored, watch_sigint

    seen: list[int] = []

    def notebook_handler(signum, frame):  # what a notebook kernel installs
        seen.append(signum)

    before = signal.signal(signal.SIGINT, notebook_handler)
    try:
        with sigint_restored():
            signal.signal(signal.SIGINT, lambda signum, frame: seen.append(-signum))  # as Tune's fit does
            watch_sigint()
            signal.raise_signal(signal.SIGINT)
            assert interrupted() and seen == [-signal.SIGINT]  # recorded, then passed on to Tune's
        assert signal.getsignal(signal.SIGINT) is notebook_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_sweep_through_the_api_leaves_the_handler_as_it_found_it(tmp_path):
    """A real (one-trial, stand-in) sweep: Tune's and the sweep's handlers are both gone afterwards."""
    from sweep.api import run_sweep

    before = signal.getsignal(signal.SIGINT)
    run_sweep("quick", overrides={"train.epochs": 1}, runs_dir=str(tmp_path), trainable="synthetic", num_samples=1,
              report=False, summary=False)
    assert signal.getsignal(signal.SIGINT) is before
