"""Which early signal ranks networks the way their final accuracy does? Measured on the records.

An early-stopping rule (ASHA, MO-ASHA) compares trials at a rung by some signal of the epochs
they have trained so far. It saves compute only when that signal ranks networks as their final
validation accuracy does. For each recorded benchmark (every network trained to the end with its
whole learning curve, ``bench/records/*.csv``) and each epoch e, this measures, against the final
val_acc of the primary replicate:

    val_acc     validation accuracy at epoch e (what ``--scheduler asha`` ranks by today)
    val_loss    validation loss at epoch e (lower is better)
    tse         sum of the training losses of epochs 1..e (Ru et al., arXiv 2006.04492; lower is better)
    tse_last2   sum of the training losses of epochs e-1..e (their TSE-E with E = 2)
    slope       val_acc(e) - val_acc(e-1) (a curve that still climbs)
    params      minus the parameter count, the cheapest zero-cost proxy (no training at all)
    flops       minus the FLOPs

as Spearman and Kendall rank correlations, as the share of the final top 10% that the signal
puts in its top half (what a rung at eta = 2 keeps), and as the mean Spearman correlation within
four equal-count params bins (params is itself an objective, so what matters is how a signal ranks
networks of about the same size; a size proxy keeps only what size still explains inside a bin).
The ceiling any signal can reach is the
seed-to-seed agreement: the Spearman correlation between the final val_acc of the same networks
trained with two seeds (the record's replicates). Pure computation; rendering is the table printed.

    .venv/bin/python bench/fidelity.py                                  # both committed records
    .venv/bin/python bench/fidelity.py --record bench/records/fmnist-bench-2.csv --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sweep.tracking.record import Record, read_record

RECORDS = sorted((Path(__file__).resolve().parent / "records").glob("*.csv"))
TOP_SHARE = 0.10
PARAMS_BINS = 4  # equal-count params groups: params is itself an objective, so a signal must also
# rank networks of about the same size


def _last_two(curve: pd.DataFrame) -> pd.Series:
    return curve["train_loss"].rolling(2, min_periods=1).sum()


# signal name -> (curve -> per-epoch value, True when larger is better)
SIGNALS: dict[str, tuple[Callable[[pd.DataFrame], pd.Series], bool]] = {
    "val_acc": (lambda c: c["val_acc"], True),
    "val_loss": (lambda c: c["val_loss"], False),
    "tse": (lambda c: c["train_loss"].cumsum(), False),
    "tse_last2": (_last_two, False),
    "slope": (lambda c: c["val_acc"].diff().fillna(c["val_acc"]), True),
    "params": (lambda c: c["params"], False),
    "flops": (lambda c: c["flops"], False),
}


def signal_table(record: Record) -> pd.DataFrame:
    """One row per (network, epoch) of the primary replicate: every signal, oriented so that larger
    is better, and the network's final val_acc."""
    primary = record.frame[record.frame["replicate"] == 0]
    parts = []
    for key, curve in primary.groupby("config_hash", sort=True):
        curve = curve.sort_values("epoch")
        part = pd.DataFrame({"config_hash": key, "epoch": curve["epoch"].to_numpy()})
        for name, (compute, larger_is_better) in SIGNALS.items():
            values = compute(curve).to_numpy(dtype=float)
            part[name] = values if larger_is_better else -values
        part["final"] = float(curve["val_acc"].iloc[-1])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def top_kept(signal: np.ndarray, final: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of the final top ``share`` of networks that ``signal`` ranks in its top half."""
    n = len(final)
    best = np.argsort(-final, kind="stable")[: max(1, math.ceil(share * n))]
    kept = set(np.argsort(-signal, kind="stable")[: n // 2].tolist())
    return sum(int(i) in kept for i in best) / len(best)


def within_bins(at: pd.DataFrame, name: str, bins: int = PARAMS_BINS) -> float:
    """Mean Spearman correlation of ``name`` with the final val_acc inside equal-count params bins."""
    groups = pd.qcut(-at["params"], bins, labels=False, duplicates="drop")
    values = [stats.spearmanr(part[name], part["final"]).statistic for _, part in at.groupby(groups)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def fidelity(table: pd.DataFrame) -> list[dict[str, float | int | str]]:
    """Per epoch and signal: Spearman, Kendall, top-10%-kept and Spearman within params bins,
    against the final val_acc."""
    rows: list[dict[str, float | int | str]] = []
    for epoch, at in table.groupby("epoch", sort=True):
        final = at["final"].to_numpy()
        for name in SIGNALS:
            signal = at[name].to_numpy()
            rows.append({"epoch": int(epoch), "signal": name,
                         "spearman": float(stats.spearmanr(signal, final).statistic),
                         "kendall": float(stats.kendalltau(signal, final).statistic),
                         "top10_in_top_half": top_kept(signal, final),
                         "spearman_within_params_bins": within_bins(at, name)})
    return rows


def seed_noise(record: Record) -> dict[str, float]:
    """How far two seeds of one network disagree, against how far networks differ.

    ``pooled_sd``: within-network sd of final val_acc over every replicate, pooled over the
    replicated networks; ``space_sd``: sd of final val_acc over every network (primary
    replicate); ``ceiling_spearman``: rank correlation of the replicated networks' final val_acc
    between replicates 0 and 1, what no early signal can beat."""
    last = record.frame[record.frame["epoch"] == record.epochs]
    wide = last.pivot_table(index="config_hash", columns="replicate", values="val_acc").dropna()
    space_sd = float(record.final(0)["val_acc"].std(ddof=1))
    if wide.shape[1] < 2:
        return {"replicated": 0, "space_sd": space_sd}
    pooled = float(np.sqrt(np.mean(wide.var(axis=1, ddof=1))))
    difference = wide[1] - wide[0]
    return {"replicated": len(wide), "replicates": int(wide.shape[1]), "pooled_sd": pooled,
            "difference_sd": float(difference.std(ddof=1)), "space_sd": space_sd,
            "noise_to_spread": pooled / space_sd,
            "ceiling_spearman": float(stats.spearmanr(wide[0], wide[1]).statistic),
            "replicated_space_sd": float(wide[0].std(ddof=1))}


def render(name: str, rows: list[dict[str, float | int | str]], noise: dict[str, float]) -> str:
    frame = pd.DataFrame(rows)
    lines = [f"## {name}", "", "seed noise: " + ", ".join(f"{k} {v:.4g}" for k, v in noise.items()), ""]
    for metric in ("spearman", "kendall", "top10_in_top_half", "spearman_within_params_bins"):
        wide = frame.pivot(index="epoch", columns="signal", values=metric)[list(SIGNALS)]
        lines += [f"{metric} with the final val_acc, by epoch:", wide.to_string(float_format="%.3f"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="append", type=Path, help="a record CSV (default: every committed one)")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    out = {}
    for path in args.record or RECORDS:
        record = read_record(path)
        rows, noise = fidelity(signal_table(record)), seed_noise(record)
        out[record.space] = {"record": path.name, "noise": noise, "fidelity": rows}
        print(render(record.space, rows, noise))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
