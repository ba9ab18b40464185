"""The fold ablation's statistics: per cell (fold x start) mean, std and n, and each fold against fold 1.

Pure pandas/numpy/scipy, no I/O. What the numbers may claim depends on what a cell pools:

- the spread of a cell is "over seeds" only when its trials differ by nothing but the seed
  (and, for warm-started trials, by which pretrained network of that seed they loaded): a
  sweep that also varies units, widths or depths inside a cell pools different networks, and
  the table says which params it pooled;
- the difference of each fold to fold 1 (same start) comes with a 95% confidence interval from
  Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom);
- the final numbers use the held-out test split (``test_acc``) when the trials evaluated it;
  validation accuracy is what selected, and is shown beside it.
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


def _stats(values: pd.Series) -> dict[str, float]:
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return {"n": len(v), "mean": float(v.mean()) if len(v) else math.nan,
            "std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
            "min": float(v.min()) if len(v) else math.nan, "max": float(v.max()) if len(v) else math.nan}


def ablation_table(data: pd.DataFrame, accuracy: str, param_columns: Sequence[str]) -> pd.DataFrame:
    """One row per (start, fold): n, ``accuracy`` and (when present) ``test_acc`` mean/std/min/max,
    the test (else validation) difference to fold 1 of the same start with its 95% CI, and what the
    cell pooled (empty: its trials differ only by the seed)."""
    final = "test_acc" if "test_acc" in data.columns and data["test_acc"].notna().any() else accuracy
    rows: list[dict[str, Any]] = []
    for start in (SCRATCH, WARM):
        part = data[data[START] == start]
        if part.empty:
            continue
        baseline = part[part[schema.FOLD_PARAM] == 1][final].dropna()
        for fold in sorted(part[schema.FOLD_PARAM].dropna().unique()):
            cell = part[part[schema.FOLD_PARAM] == fold]
            row: dict[str, Any] = {schema.FOLD_PARAM: int(fold), START: start, "n": len(cell)}
            row.update({f"{accuracy} {k}": v for k, v in _stats(cell[accuracy]).items() if k in ("mean", "std")})
            stats = _stats(cell[final])
            row.update({"mean": stats["mean"], "std": stats["std"], "min": stats["min"], "max": stats["max"]})
            if fold != 1 and len(baseline):
                diff, low, high = welch_interval(cell[final].dropna(), baseline)
                row.update({"diff vs fold 1": diff, "95% CI low": low, "95% CI high": high})
            pooled = pooled_params(cell, param_columns)
            row["spread over"] = "seeds" if not pooled else "pooled: " + ", ".join(pooled)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["metric"] = final
    return table


def cell_starts(data: pd.DataFrame, warm: pd.Series) -> pd.DataFrame:
    return data.assign(**{START: np.where(warm, WARM, SCRATCH)})
