"""The fold ablation's statistics (reports.ablation) on hand-made frames, numbers worked out by hand.

Each frame is what ``reports.analysis.fold_ablation`` hands over: ranked trials with finite
validation accuracy, their flattened config and a ``start`` column. Expected values are written
in the tests (and derived in the comments), never computed with the code under test.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reports.ablation import SCRATCH, WARM, ablation_table, cell_starts

PARAMS = ["model.fold", "model.base", "train.seed", "train.weights"]
T_975_DOF_1 = 12.7062  # Student's t, 97.5% quantile, 1 degree of freedom (a printed table)


def frame(rows: list[tuple[int, int, str | None, float, float]]) -> pd.DataFrame:
    """(fold, seed, weights, val_acc, test_acc) rows, every other param alike; weights None: from scratch."""
    data = pd.DataFrame([{"model.fold": fold, "model.base": 16, "train.seed": seed, "train.weights": weights,
                          "val_acc": val, "test_acc": test} for fold, seed, weights, val, test in rows])
    return cell_starts(data, data["train.weights"].notna())


def cell(table: pd.DataFrame, start: str, fold: int) -> pd.Series:
    return table[(table["start"] == start) & (table["model.fold"] == fold)].iloc[0]


# fold 1: three seeds, the third without a test accuracy; fold 2: seed 0 twice (the same config and
# seed, run twice: 0.84 and 0.86, one network measured twice -> one value 0.85) and seed 1 (0.85).
SCRATCH_ROWS = [
    (1, 0, None, 0.81, 0.80), (1, 1, None, 0.83, 0.82), (1, 2, None, 0.84, math.nan),
    (2, 0, None, 0.85, 0.84), (2, 0, None, 0.87, 0.86), (2, 1, None, 0.86, 0.85),
]


def test_n_counts_the_values_used_not_the_rows():
    table = ablation_table(frame(SCRATCH_ROWS), "val_acc", PARAMS)
    one = cell(table, SCRATCH, 1)
    assert table.attrs["metric"] == "test_acc"
    assert one["n"] == 2  # 3 rows, but seed 2 has no test accuracy
    assert one["mean"] == pytest.approx(0.81)  # (0.80 + 0.82) / 2
    assert one["std"] == pytest.approx(math.sqrt(2) * 0.01)  # deviations +-0.01, ddof 1: sqrt(0.0002)
    assert one["val_acc mean"] == pytest.approx(0.82)  # the same two trials: (0.81 + 0.83) / 2


def test_the_same_config_and_seed_twice_is_one_value_not_two_seeds():
    table = ablation_table(frame(SCRATCH_ROWS), "val_acc", PARAMS)
    two = cell(table, SCRATCH, 2)
    assert two["n"] == 2 and two["repeats collapsed"] == 1  # seeds 0 and 1; seed 0's second run folded in
    assert two["mean"] == pytest.approx(0.85) and two["std"] == pytest.approx(0.0)  # values 0.85, 0.85
    assert two["min"] == pytest.approx(0.85) and two["max"] == pytest.approx(0.85)
    assert two["val_acc mean"] == pytest.approx(0.86)  # (mean(0.85, 0.87) + 0.86) / 2
    assert cell(table, SCRATCH, 1)["repeats collapsed"] == 0
    # Welch by hand: fold 2 has no spread, so se = s1 / sqrt(2) = 0.01 and the dof are n1 - 1 = 1
    assert two["diff vs fold 1"] == pytest.approx(0.85 - 0.81)
    assert two["95% CI high"] - two["diff vs fold 1"] == pytest.approx(T_975_DOF_1 * 0.01, rel=1e-4)
    assert two["diff vs fold 1"] - two["95% CI low"] == pytest.approx(T_975_DOF_1 * 0.01, rel=1e-4)


def test_only_seed_repeats_collapse():
    """Two seeds of one config, or two configs with one seed, stay two values."""
    rows = [(1, 0, None, 0.81, 0.80), (1, 1, None, 0.81, 0.80), (2, 0, None, 0.85, 0.84)]
    data = frame(rows)
    data.loc[2, "model.base"] = 8  # fold 2 at seed 0 is a different network than any other row
    data = pd.concat([data, frame([(2, 0, None, 0.87, 0.86)])], ignore_index=True)
    table = ablation_table(data, "val_acc", PARAMS)
    assert cell(table, SCRATCH, 1)["n"] == 2 and cell(table, SCRATCH, 1)["repeats collapsed"] == 0
    assert cell(table, SCRATCH, 2)["n"] == 2 and cell(table, SCRATCH, 2)["repeats collapsed"] == 0


def test_warm_cells_sharing_a_pretrain_network_are_marked_paired():
    """Fold 1 and fold 2 of replicate r both start from /pre/seed<r>.pt: paired, Welch is conservative."""
    rows = [(fold, seed, f"/pre/seed{seed}.pt", 0.9 + fold / 100 + seed / 1000, 0.9 + fold / 100 + seed / 1000)
            for fold in (1, 2) for seed in (0, 1)]
    rows += [(1, 0, None, 0.80, 0.80), (1, 1, None, 0.82, 0.82), (2, 0, None, 0.85, 0.85), (2, 1, None, 0.86, 0.86)]
    table = ablation_table(frame(rows), "val_acc", PARAMS)
    assert cell(table, WARM, 2)["pairing"] == "paired: conservative"
    assert cell(table, SCRATCH, 2)["pairing"] == "unpaired"  # nothing shared: the trials are independent
    assert pd.isna(cell(table, WARM, 1)["pairing"])  # the baseline has no difference to pair
    assert "paired" in table.attrs["notes"] and "repeats" in table.attrs["notes"]
