"""Ray Tune's view of the sweep's searcher: :class:`sweep.search.core.SearchCore` as a ``Searcher``.

All the search logic (proposal, budgets, de-duplication, seeds, the concurrency limit, restore)
lives in ``sweep/search``, which knows no Ray; this adapter only gives it Tune's base class, so
``Tuner`` accepts it and the recorded-benchmark simulator drives the very same object.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import Searcher

from sweep.search.core import FINISHED, SearchCore

assert FINISHED == Searcher.FINISHED  # the core's "no more trials" is Tune's


class ResNetXSearcher(SearchCore, Searcher):
    """Budget-aware, de-duplicating, resumable searcher over a ResNetX search space, for Ray Tune."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Searcher.__init__(self, metric=None, mode=None)
        SearchCore.__init__(self, *args, **kwargs)
