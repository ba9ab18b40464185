"""The sweep's search algorithms, which know no Ray: proposers, the searcher's core, MO-ASHA's rung rule.

Ray Tune drives them through thin adapters in ``sweep.tune`` (a ``Searcher``, a
``TrialScheduler``); the recorded-benchmark simulator (``sweep.simulator``) drives the same
adapters without a cluster, as Syne Tune separates its schedulers from their backends.
"""
