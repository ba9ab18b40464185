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
    size        the parameter count itself: on these records larger networks are more accurate, so
                this is the size baseline a zero-cost proxy has to beat (params, reversed)
    pow3        the final epoch's val_acc predicted from epochs 1..e by a pow3 learning curve
                y(t) = c - a * t**(-alpha) (Domhan et al. 2015, IJCAI, "Speeding up automatic
                hyperparameter optimization of deep neural networks by extrapolation of learning
                curves"), fitted by least squares with bounds from epoch 3 on (three parameters);
                when the fit fails, the last value (how often: ``pow3_fallbacks`` in the json;
                fits that end on a bound, e.g. the asymptote c = 1: ``pow3_at_bound``)
    synflow, grad_norm, naswot, jacob_cov
                zero-cost proxies of the network at initialisation (``resnetx.zero_cost``, one
                fixed minibatch, init seed 0), read from the cache bench/zero_cost.py writes
                (bench/results/zero_cost.json); left out when it is missing. Their own init-seed
                noise is in the json's ``zero_cost_noise``.

as Spearman and Kendall rank correlations, as the share of the final top 10% that the signal
puts in its top half (what a rung at eta = 2 keeps), and as the mean Spearman correlation within
four equal-count params bins (params is itself an objective, so what matters is how a signal ranks
networks of about the same size; a size proxy keeps only what size still explains inside a bin).
The ceiling any signal can reach is the
seed-to-seed agreement: the Spearman correlation between the final val_acc of the same networks
trained with two seeds (the record's replicates). Pure computation; rendering is the table printed.

    .venv/bin/python bench/zero_cost.py                                 # the proxies' cache (minutes)
    .venv/bin/python bench/fidelity.py                                  # both committed records
    .venv/bin/python bench/fidelity.py --record bench/records/fmnist-bench-2.csv --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from sweep.tracking.record import Record, read_record

RECORDS = sorted((Path(__file__).resolve().parent / "records").glob("*.csv"))
ZERO_COST = Path(__file__).resolve().parent / "results" / "zero_cost.json"
PROXIES = ("synflow", "grad_norm", "naswot", "jacob_cov")  # larger is better for each
POW3_FIRST_EPOCH = 3  # pow3 has three parameters: fitted from three epochs on
# bounds of (c, a, alpha): an accuracy limit in [0, 1], a rising curve (a >= 0), a decay exponent
POW3_BOUNDS = ((0.0, 0.0, 0.0), (1.0, 2.0, 10.0))
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
    "size": (lambda c: c["params"], True),
    "flops": (lambda c: c["flops"], False),
}


def pow3(t: np.ndarray | float, c: float, a: float, alpha: float) -> np.ndarray | float:
    """Domhan et al. 2015's pow3 learning curve, ``c - a * t**(-alpha)``."""
    return c - a * np.power(t, -alpha)


def pow3_fit(epochs: np.ndarray, values: np.ndarray) -> tuple[float, float, float] | None:
    """Least-squares pow3 parameters ``(c, a, alpha)`` within :data:`POW3_BOUNDS`
    (``scipy.optimize.curve_fit``, trust-region reflective), or None when the fit fails (fewer
    points than parameters, non-finite values, no convergence, a non-finite result)."""
    t, y = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    if len(t) < 3 or not (np.all(np.isfinite(y)) and np.all(t > 0)):
        return None
    lower, upper = np.array(POW3_BOUNDS[0]), np.array(POW3_BOUNDS[1])
    start = np.clip([y.max(), y.max() - y[0], 1.0], lower + 1e-6, upper - 1e-6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            found, _ = optimize.curve_fit(pow3, t, y, p0=start, bounds=(lower, upper), maxfev=2000)
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite(found)):
        return None
    return float(found[0]), float(found[1]), float(found[2])


def pow3_at_bound(found: tuple[float, float, float], tolerance: float = 1e-4) -> bool:
    """True when a fitted parameter sits on one of :data:`POW3_BOUNDS` (the bound decided it)."""
    values = np.asarray(found)
    return bool(np.any(np.abs(values - np.array(POW3_BOUNDS[0])) < tolerance)
                or np.any(np.abs(values - np.array(POW3_BOUNDS[1])) < tolerance))


def pow3_predict(epochs: np.ndarray, values: np.ndarray, at: float) -> tuple[float, str]:
    """The pow3 prediction at epoch ``at`` from a curve and how it was made: ``"fit"``, ``"bound"``
    (a fit with a parameter on its bound) or ``"fallback"`` (the fit failed: the curve's last value)."""
    found = pow3_fit(epochs, values)
    if found is None:
        return float(np.asarray(values, dtype=float)[-1]), "fallback"
    return float(pow3(float(at), *found)), "bound" if pow3_at_bound(found) else "fit"


def load_zero_cost(path: Path = ZERO_COST) -> dict | None:
    """The proxies' cache that bench/zero_cost.py writes, or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def signal_table(record: Record, zero_cost: dict | None = None) -> pd.DataFrame:
    """One row per (network, epoch) of the primary replicate: every signal, oriented so that larger
    is better, and the network's final val_acc. ``pow3`` is NaN before :data:`POW3_FIRST_EPOCH`;
    ``pow3_how`` says how each value was made (:func:`pow3_predict`). ``zero_cost`` (the cache's
    entry for this record: ``{"scores": {config_hash: {proxy: value}}}``) adds a column per proxy."""
    primary = record.frame[record.frame["replicate"] == 0]
    scores = (zero_cost or {}).get("scores", {})
    parts = []
    for key, curve in primary.groupby("config_hash", sort=True):
        curve = curve.sort_values("epoch")
        epochs, accuracy = curve["epoch"].to_numpy(dtype=float), curve["val_acc"].to_numpy(dtype=float)
        part = pd.DataFrame({"config_hash": key, "epoch": curve["epoch"].to_numpy()})
        for name, (compute, larger_is_better) in SIGNALS.items():
            values = compute(curve).to_numpy(dtype=float)
            part[name] = values if larger_is_better else -values
        fits = [pow3_predict(epochs[:k], accuracy[:k], record.epochs) if k >= POW3_FIRST_EPOCH else (math.nan, "")
                for k in range(1, len(epochs) + 1)]
        part["pow3"] = [value for value, _ in fits]
        part["pow3_how"] = [how for _, how in fits]
        if scores:
            for proxy in PROXIES:
                part[proxy] = float(scores[str(key)][proxy])
        part["final"] = float(accuracy[-1])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def signal_names(table: pd.DataFrame) -> list[str]:
    """The signals a table holds, in the order of the tables: curve signals, pow3, proxies."""
    return [name for name in (*SIGNALS, "pow3", *PROXIES) if name in table.columns]


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
        for name in signal_names(table):
            signal = at[name].to_numpy()
            if np.isnan(signal).all():
                continue  # pow3 before its first epoch
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


def pow3_counts(table: pd.DataFrame, how: str) -> dict[str, int]:
    """Per epoch (from :data:`POW3_FIRST_EPOCH`): how many networks' pow3 values were made ``how``
    (``"fallback"``: failed fits; ``"bound"``: fits with a parameter on its bound)."""
    fitted = table[table["epoch"] >= POW3_FIRST_EPOCH]
    return {str(int(e)): int((part["pow3_how"] == how).sum()) for e, part in fitted.groupby("epoch")}


def zero_cost_noise(entry: dict, final: pd.Series) -> dict:
    """Init-seed noise of each proxy on the cache's re-scored subset of networks.

    Per proxy: ``spearman_between_seeds``, the mean rank correlation of the proxy over the subset
    between init seed 0 and each repeat seed; ``spearman_final_seed<S>``, the proxy's Spearman with
    the final val_acc on the subset at init seed S (how much its fidelity depends on the seed);
    ``noise_to_spread``, the pooled within-network sd over the seeds against the subset's sd at
    seed 0 (synflow on log10, its scale)."""
    repeats = entry.get("repeats", {})
    if not repeats:
        return {}
    keys = sorted(next(iter(repeats.values())))
    out: dict = {"networks": len(keys), "init_seeds": [0, *(int(s) for s in repeats)], "proxies": {}}
    for proxy in PROXIES:
        seeds = {"0": np.array([entry["scores"][k][proxy] for k in keys], dtype=float)}
        seeds.update({s: np.array([v[k][proxy] for k in keys], dtype=float) for s, v in repeats.items()})
        scaled = {s: np.log10(v) if proxy == "synflow" else v for s, v in seeds.items()}
        stacked = np.vstack(list(scaled.values()))
        target = final.loc[keys].to_numpy(dtype=float)
        out["proxies"][proxy] = {
            "spearman_between_seeds": float(np.mean([stats.spearmanr(seeds["0"], v).statistic
                                                     for s, v in seeds.items() if s != "0"])),
            **{f"spearman_final_seed{s}": float(stats.spearmanr(v, target).statistic) for s, v in seeds.items()},
            "noise_to_spread": float(np.sqrt(np.mean(stacked.var(axis=0, ddof=1))) / scaled["0"].std(ddof=1)),
        }
    return out


def render(name: str, rows: list[dict[str, float | int | str]], noise: dict[str, float],
           extra: dict | None = None) -> str:
    frame = pd.DataFrame(rows)
    lines = [f"## {name}", "", "seed noise: " + ", ".join(f"{k} {v:.4g}" for k, v in noise.items()), ""]
    for label, value in (extra or {}).items():
        lines += [f"{label}: {json.dumps(value)}", ""]
    present = set(frame["signal"])
    names = [n for n in (*SIGNALS, "pow3", *PROXIES) if n in present]
    for metric in ("spearman", "kendall", "top10_in_top_half", "spearman_within_params_bins"):
        wide = frame.pivot(index="epoch", columns="signal", values=metric)[names]
        lines += [f"{metric} with the final val_acc, by epoch:", wide.to_string(float_format="%.3f"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="append", type=Path, help="a record CSV (default: every committed one)")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--zero-cost", type=Path, default=ZERO_COST,
                        help="the proxies' cache (bench/zero_cost.py writes it; proxies left out when missing)")
    args = parser.parse_args(argv)
    cache = load_zero_cost(args.zero_cost) or {}
    out = {}
    for path in args.record or RECORDS:
        record = read_record(path)
        entry = cache.get(record.space)
        if entry is not None and entry.get("record") != path.name:
            entry = None  # a cache of another record of the same space
        table = signal_table(record, entry)
        rows, noise = fidelity(table), seed_noise(record)
        final = table.groupby("config_hash")["final"].first()
        extra = {"networks": int(table["config_hash"].nunique()),
                 "pow3_fallbacks": pow3_counts(table, "fallback"), "pow3_at_bound": pow3_counts(table, "bound"),
                 "zero_cost_noise": zero_cost_noise(entry, final) if entry else {}}
        out[record.space] = {"record": path.name, "noise": noise, **extra, "fidelity": rows}
        print(render(record.space, rows, noise, extra))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
