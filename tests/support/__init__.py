"""Test support: the deterministic stand-in trainable and the CLI entry that knows it.

``register_standin()`` adds ``--trainable synthetic`` to the sweep's trainable registry; the
shipped ``resnetx`` never has it. ``tests/conftest.py`` calls it for in-process tests, and
``python -m tests.support.cli`` is ``resnetx`` with it registered, for tests that need a sweep
in a process of its own (to kill it).
"""

from __future__ import annotations


def register_standin() -> None:
    import cloudpickle

    import tests.support.standin as standin
    from sweep.tune.trainables import register_trainable

    # By value: a Ray worker then needs no ``tests`` package on its path to run the stand-in.
    cloudpickle.register_pickle_by_value(standin)
    register_trainable("synthetic", standin.synthetic_trial,
                       options=lambda plan: standin.StandinOptions.from_env())
