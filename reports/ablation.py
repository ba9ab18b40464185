"""The fold ablation's statistics: per cell (fold x start) mean, std and n, and each fold against fold 1.

Pure pandas/numpy/scipy, no I/O. What the numbers may claim depends on what a cell pools:

- the spread of a cell is "over seeds" only when its trials differ by nothing but the seed
  (and, for warm-started trials, by which pretrained network of that seed they loaded): a
  sweep that also varies units, widths or depths inside a cell pools different networks, and
  the table says which params it pooled;
- the difference of each fold to fold 1 (same start) comes with a 95% confidence interval from
  Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom);
- the final numbers use the held-out test split (``test_acc``) when the trials evaluated it;
  validation accuracy is what selected, and is shown beside it;
- ``n`` is the number of values a cell's statistics actually use: trials without a finite final
  number do not count, and runs that repeat another run's config *and* seed are one measurement
  of one network (averaged into one value, counted in ``repeats collapsed``), not two seeds;
- warm-started cells whose trials load the same pretrained network as fold 1's (one pretrain
  network per replicate) are paired samples; Welch's interval treats them as independent, so it
  is wider than a paired one would be: ``pairing`` says "paired: conservative" there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports import schema

START = "start"
SCRATCH, WARM = "from scratch", "warm-started"
CONFIDENCE = 0.95
# Params that may differ inside a cell without pooling different networks.
SEED_LIKE = (schema.SEED_PARAM, *schema.WARM_START_PARAMS)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float,
                                                                                                        float]:
    """(mean(a) - mean(b), low, high): Welch's t interval; NaN bounds when either side has n < 2."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    return diff, diff - half, diff + half


def pooled_params(cell: pd.DataFrame, param_columns: Sequence[str]) -> list[str]:
    """Params that take several values inside one cell, other than the seed-like ones."""
    out = []
    for column in param_columns:
        if column in SEED_LIKE or column == schema.FOLD_PARAM or column not in cell.columns:
            continue
        if cell[column].map(repr).nunique() > 1:
            out.append(column)
    return out


PAIRED, UNPAIRED = "paired: conservative", "unpaired"
NOTES = ("n counts the distinct (config, seed) measurements with a finite {metric}; runs repeating another run's "
         "config and seed are averaged into one value (repeats collapsed), not counted as seeds. "
         "pairing 'paired: conservative': the cell shares its pretrained networks with fold 1, so its trials are "
         "paired and Welch's unpaired interval is wider than a paired one would be.")


def _stats(values: pd.Series) -> dict[str, float]:
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return {"n": len(v), "mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
            "min": float(v.min()) if len(v) else math.nan, "max": float(v.max()) if len(v) else math.nan}


def collapse_repeats(rows: pd.DataFrame, metrics: Sequence[str], param_columns: Sequence[str]) -> pd.DataFrame:
    """One row per distinct config, the seed included, with each metric averaged over its runs.

    Two runs of the same config with the same seed measure one network twice: counted apart
    they would pass as two seeds and shrink the std and the interval. Without any param column
    nothing can be told apart, and every row stays.
    """
    keys = [c for c in param_columns if c in rows.columns]
    if not keys or rows.empty:
        return rows[list(metrics)]
    # repr: list-valued params (num_nodes) are unhashable, and repr tells every parsed value apart
    config = rows[keys].map(repr).agg("|".join, axis=1)
    return rows.groupby(config.to_numpy(), sort=False)[list(metrics)].mean()


def measured(cell: pd.DataFrame, final: str, metrics: Sequence[str],
             param_columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """(the values a cell's statistics use, how many runs were folded into a repeat of theirs).

    Only runs with a finite ``final`` count, for every metric alike, so that ``n`` is true of
    each number in the row.
    """
    used = cell[np.isfinite(cell[final].to_numpy(dtype=float))]
    values = collapse_repeats(used, metrics, param_columns)
    return values, len(used) - len(values)


def pairing(cell: pd.DataFrame, baseline: pd.DataFrame) -> str:
    """PAIRED when a warm cell loads a pretrained network that fold 1's trials load too.

    A replicate's warm trials all start from its one pretrain network, so a fold's value and
    fold 1's value of that replicate move together; Welch's interval ignores that and is wider
    than a paired interval (conservative, not wrong).
    """
    if cell.empty or not (cell[START] == WARM).all():
        return UNPAIRED
    for column in schema.WARM_START_PARAMS:
        if column in cell.columns and column in baseline.columns:
            shared = set(cell[column].dropna().map(repr)) & set(baseline[column].dropna().map(repr))
            if shared:
                return PAIRED
    return UNPAIRED


def ablation_table(data: pd.DataFrame, accuracy: str, param_columns: Sequence[str]) -> pd.DataFrame:
    """One row per (start, fold): n, repeats collapsed, ``accuracy`` and (when present) ``test_acc``
    mean/std/min/max, the test (else validation) difference to fold 1 of the same start with its
    95% CI and whether that difference is paired, and what the cell pooled (empty: its trials
    differ only by the seed). ``attrs``: ``metric`` (the final accuracy) and ``notes``."""
    final = "test_acc" if "test_acc" in data.columns and data["test_acc"].notna().any() else accuracy
    metrics = list(dict.fromkeys([final, accuracy]))
    rows: list[dict[str, Any]] = []
    for start in (SCRATCH, WARM):
        part = data[data[START] == start]
        if part.empty:
            continue
        baseline_rows = part[part[schema.FOLD_PARAM] == 1]
        baseline = measured(baseline_rows, final, metrics, param_columns)[0][final]
        for fold in sorted(part[schema.FOLD_PARAM].dropna().unique()):
            cell = part[part[schema.FOLD_PARAM] == fold]
            values, repeats = measured(cell, final, metrics, param_columns)
            row: dict[str, Any] = {schema.FOLD_PARAM: int(fold), START: start, "n": len(values),
                                   "repeats collapsed": repeats}
            row.update({f"{accuracy} {k}": v for k, v in _stats(values[accuracy]).items() if k in ("mean", "std")})
            stats = _stats(values[final])
            row.update({"mean": stats["mean"], "std": stats["std"], "min": stats["min"], "max": stats["max"]})
            if fold != 1 and len(baseline):
                diff, low, high = welch_interval(values[final], baseline)
                row.update({"diff vs fold 1": diff, "95% CI low": low, "95% CI high": high,
                            "pairing": pairing(cell, baseline_rows)})
            pooled = pooled_params(cell, param_columns)
            row["spread over"] = "seeds" if not pooled else "pooled: " + ", ".join(pooled)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["metric"] = final
    table.attrs["notes"] = NOTES.format(metric=final)
    return table


def cell_starts(data: pd.DataFrame, warm: pd.Series) -> pd.DataFrame:
    return data.assign(**{START: np.where(warm, WARM, SCRATCH)})
