"""The live progress line counts the front as the report does: trials trained to the end only.

A trial ASHA stopped at a rung reports its accuracy at that rung; the report never ranks it, but
the live "front N" did (review of 7bd5730, sweep/tune/progress.py:87-121). The callback's own
counting is driven here with the three fields of Tune's Trial it reads.
"""

from __future__ import annotations

from types import SimpleNamespace

from reports.pareto import parse_objectives
from sweep.tune.progress import SweepProgress

OBJECTIVES = parse_objectives("val_acc:max,params:min")


def _trial(trial_id: str, epoch: int, val_acc: float, params: int, epochs: int = 4) -> SimpleNamespace:
    last = {"epoch": epoch, "val_acc": val_acc, "params": params, "status": "running" if epoch < epochs else "finished"}
    return SimpleNamespace(trial_id=trial_id, last_result=last,
                           config={"experiment": {"train": {"epochs": epochs}}})


def test_the_live_front_leaves_out_stopped_trials():
    progress = SweepProgress(OBJECTIVES, num_samples=3, time_budget_s=None)
    progress._record(_trial("a", 4, 0.80, 5_000), errored=False)  # finished
    progress._record(_trial("b", 4, 0.90, 9_000), errored=False)  # finished, larger and better: both on the front
    # stopped at epoch 1 with a small network: had it counted, it would join the front (smallest)
    progress._record(_trial("c", 1, 0.30, 1_000), errored=False)
    line = progress.status_line()
    assert "front 2" in line, line
    assert "3/3 done: 3 ok" in line  # stopped trials still count as done and ok
