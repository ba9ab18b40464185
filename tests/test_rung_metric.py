"""``--rung-metric tse``: early stopping ranks a rung by the sum of the training losses so far.

The expected sums are computed here from the committed record's CSV with the ``csv`` module (not
with the code under test); the scheduler's decisions are checked against them.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from reports.pareto import Objective, parse_objectives
from resnetx.errors import ConfigError
from search_spaces import load_space
from sweep.config.settings import SweepSettings
from sweep.search.proposers import make_proposer
from sweep.simulator import simulate_sweep
from sweep.tracking.record import read_record
from sweep.tune.replay import replay_reports
from sweep.tune.schedulers import make_scheduler, rung_objectives
from sweep.tune.searcher import ResNetXSearcher

RECORD = Path(__file__).resolve().parents[1] / "bench" / "records" / "fmnist-bench.csv"
OBJECTIVES = parse_objectives("val_acc:max,params:min")


def sums_from_csv() -> dict[tuple[str, int], list[float]]:
    """(network, replicate) -> running sums of train_loss by epoch, read straight from the file."""
    rows = defaultdict(list)
    with open(RECORD) as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            rows[(row["config_hash"], int(row["replicate"]))].append((int(row["epoch"]), float(row["train_loss"])))
    out = {}
    for key, curve in rows.items():
        total, sums = 0.0, []
        for _, loss in sorted(curve):
            total += loss
            sums.append(total)
        out[key] = sums
    return out


def test_rung_objectives_swap_only_the_accuracy_objective():
    assert rung_objectives(OBJECTIVES, "accuracy") == OBJECTIVES
    assert rung_objectives(OBJECTIVES, "tse") == [Objective("tse", False), Objective("params", False)]
    three = parse_objectives("params:min,val_acc:max,flops:min")
    assert rung_objectives(three, "tse") == [Objective("params", False), Objective("tse", False),
                                            Objective("flops", False)]
    with pytest.raises(ValueError, match="rung_metric: got 'loss'"):
        rung_objectives(OBJECTIVES, "loss")


def test_asha_ranks_by_tse_minimised():
    scheduler = make_scheduler("asha", OBJECTIVES, None, rung_metric="tse")
    assert (scheduler._metric, scheduler._mode) == ("tse", "min")
    plain = make_scheduler("asha", OBJECTIVES, None, rung_metric="accuracy")
    assert (plain._metric, plain._mode) == ("val_acc", "max")


def test_auto_is_accuracy_for_asha_and_tse_for_moasha():
    """The measured defaults (docs/benchmarks.md, "Rung metric"): what a user gets without the option."""
    asha = make_scheduler("asha", OBJECTIVES, None)
    assert (asha._metric, asha._mode) == ("val_acc", "max")
    moasha = make_scheduler("moasha", OBJECTIVES, None)
    assert [(o.name, o.maximize) for o in moasha.objectives] == [("tse", False), ("params", False)]
    assert SweepSettings().rung_metric == "auto"


def test_replay_reports_the_running_sum_of_training_losses():
    record, expected = read_record(RECORD), sums_from_csv()
    for key in record.keys[:20]:
        reports = replay_reports(record, key, None, record.epochs)
        assert [r["tse"] for r in reports] == pytest.approx(expected[(key, 0)])


def test_moasha_with_tse_decides_on_the_recorded_sums():
    """Every rung decision of a simulated MO-ASHA sweep carries the network's recorded training-loss
    sum at the rung's epoch (and its params), and some trials are stopped."""
    record, expected, space = read_record(RECORD), sums_from_csv(), load_space("fmnist-bench")
    proposer = make_proposer("random", space, OBJECTIVES, 3, 60)
    searcher = ResNetXSearcher(space, proposer, OBJECTIVES, 3)
    scheduler = make_scheduler("moasha", OBJECTIVES, None, rung_metric="tse")
    sim = simulate_sweep(record, searcher, scheduler, num_samples=60, workers=2, primary_replicate=True)
    keys = {t.trial_id: t.key for t in sim.trials}
    assert len(scheduler.decisions) >= 60
    for decision in scheduler.decisions:
        tse, params = decision["values"]
        assert tse == pytest.approx(expected[(keys[decision["trial_id"]], 0)][decision["rung"] - 1])
        assert params > 1000
    assert 0 < sum(t.epochs_run < record.epochs for t in sim.trials) < len(sim.trials)


def test_rung_metric_needs_a_scheduler():
    with pytest.raises(ConfigError, match=r"rung_metric.*applies to --scheduler asha or moasha only"):
        SweepSettings(rung_metric="tse")
    assert SweepSettings(scheduler="moasha", rung_metric="tse").rung_metric == "tse"
