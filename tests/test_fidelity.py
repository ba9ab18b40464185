"""bench/fidelity.py: the rank-agreement measures, checked on inputs whose answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

BENCH = Path(__file__).resolve().parents[1] / "bench"
spec = importlib.util.spec_from_file_location("fidelity", BENCH / "fidelity.py")
fidelity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fidelity)


def test_top_kept_counts_the_final_top_tenth_in_the_signals_top_half():
    final = np.arange(20, dtype=float)  # top 10%: networks 19 and 18
    assert fidelity.top_kept(final, final) == 1.0
    assert fidelity.top_kept(-final, final) == 0.0
    signal = final.copy()
    signal[19] = -1.0  # the best network ranked last by the signal: one of two kept
    assert fidelity.top_kept(signal, final) == 0.5


def test_signals_are_oriented_and_the_final_epoch_agrees_with_itself():
    record = fidelity.read_record(BENCH / "records" / "fmnist-bench.csv")
    table = fidelity.signal_table(record)
    one = table[table["config_hash"] == record.keys[0]].sort_values("epoch")
    curve = record.curve(record.keys[0])
    assert one["tse"].to_numpy() == pytest.approx(-np.cumsum(curve["train_loss"].to_numpy()))
    assert one["val_loss"].to_numpy() == pytest.approx(-curve["val_loss"].to_numpy())
    rows = fidelity.fidelity(table)
    last = {r["signal"]: r for r in rows if r["epoch"] == record.epochs}
    assert last["val_acc"]["spearman"] == pytest.approx(1.0)
    final = record.final()
    assert last["params"]["kendall"] == pytest.approx(stats.kendalltau(-final["params"], final["val_acc"]).statistic)


def test_seed_noise_is_the_pooled_within_network_spread():
    record = fidelity.read_record(BENCH / "records" / "fmnist-bench.csv")
    noise = fidelity.seed_noise(record)
    spread = record.replicate_spread()  # two replicates: the pooled sd is sqrt(mean(d^2) / 2)
    assert noise["replicated"] == len(spread)
    assert noise["pooled_sd"] == pytest.approx(float(np.sqrt(np.mean(spread["difference"] ** 2) / 2)))
