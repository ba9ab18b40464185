"""bench/fidelity.py: the rank-agreement measures, checked on inputs whose answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
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
    assert last["size"]["spearman"] == pytest.approx(-last["params"]["spearman"])


def test_seed_noise_is_the_pooled_within_network_spread():
    record = fidelity.read_record(BENCH / "records" / "fmnist-bench.csv")
    noise = fidelity.seed_noise(record)
    spread = record.replicate_spread()  # two replicates: the pooled sd is sqrt(mean(d^2) / 2)
    assert noise["replicated"] == len(spread)
    assert noise["pooled_sd"] == pytest.approx(float(np.sqrt(np.mean(spread["difference"] ** 2) / 2)))


def test_pow3_recovers_the_parameters_of_a_synthetic_curve():
    c, a, alpha = 0.9, 0.5, 0.7
    t = np.arange(1, 13, dtype=float)
    curve = c - a * t ** -alpha
    found = fidelity.pow3_fit(t[:5], curve[:5])
    assert found == pytest.approx((c, a, alpha), abs=1e-5)
    value, how = fidelity.pow3_predict(t[:5], curve[:5], 12)
    assert how == "fit" and value == pytest.approx(0.9 - 0.5 * 12 ** -0.7, abs=1e-5)


def test_pow3_falls_back_to_the_last_value_and_flags_bounds():
    t = np.arange(1.0, 5.0)
    assert fidelity.pow3_fit(t[:2], np.array([0.5, 0.6])) is None  # fewer points than parameters
    assert fidelity.pow3_predict(t, np.array([0.5, 0.6, np.nan, 0.7]), 8) == (0.7, "fallback")
    # a falling curve: the rising-curve bound a >= 0 decides the fit (flat at the mean)
    value, how = fidelity.pow3_predict(t, np.array([0.8, 0.7, 0.6, 0.5]), 8)
    assert how == "bound" and value == pytest.approx(0.65, abs=1e-3)


def test_zero_cost_columns_come_from_the_cache_and_rank_like_their_values():
    record = fidelity.read_record(BENCH / "records" / "fmnist-bench.csv")
    final = record.final().set_index("config_hash")["val_acc"]
    # a made-up cache: synflow = the final accuracy itself, grad_norm its opposite
    scores = {k: {"synflow": v, "grad_norm": -v, "naswot": 1.0 * i, "jacob_cov": -1.0 * i}
              for i, (k, v) in enumerate(final.items())}
    table = fidelity.signal_table(record, {"scores": scores})
    assert fidelity.signal_names(table)[-5:] == ["pow3", "synflow", "grad_norm", "naswot", "jacob_cov"]
    assert (table.loc[table["epoch"] < fidelity.POW3_FIRST_EPOCH, "pow3"].isna()).all()
    rows = {(r["epoch"], r["signal"]): r for r in fidelity.fidelity(table)}
    assert rows[(1, "synflow")]["spearman"] == pytest.approx(1.0)
    assert rows[(1, "grad_norm")]["spearman"] == pytest.approx(-1.0)
    assert (1, "pow3") not in rows and (3, "pow3") in rows


def test_zero_cost_noise_between_init_seeds():
    final = pd.Series([0.1, 0.2, 0.3, 0.4], index=list("abcd"))
    scores = {k: {"synflow": 10.0 ** (i + 1), "grad_norm": float(i), "naswot": float(i), "jacob_cov": float(i)}
              for i, k in enumerate("abcd")}
    swapped = {k: dict(v) for k, v in scores.items()}
    swapped["a"]["grad_norm"], swapped["b"]["grad_norm"] = 1.0, 0.0  # seed 1 swaps the first two
    noise = fidelity.zero_cost_noise({"scores": scores, "repeats": {"1": swapped}}, final)
    assert noise["networks"] == 4 and noise["init_seeds"] == [0, 1]
    noise = noise["proxies"]
    assert noise["naswot"]["spearman_between_seeds"] == pytest.approx(1.0)
    assert noise["naswot"]["noise_to_spread"] == 0.0
    assert noise["grad_norm"]["spearman_between_seeds"] == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert noise["grad_norm"]["spearman_final_seed1"] == pytest.approx(0.8)
    # two seeds 1 apart on two of four networks: within sd sqrt(mean([.5, .5, 0, 0])) = .5; sd(0..3) = 1.291
    assert noise["grad_norm"]["noise_to_spread"] == pytest.approx(0.5 / np.std([0, 1, 2, 3], ddof=1))
