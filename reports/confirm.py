"""The confirm stage's statistics: which search-stage networks to retrain, and the confirmed front.

A sweep searches at low fidelity with one seed per network, and its ranks are inside the seed
noise. The confirm stage retrains chosen candidates with the space's ``final:`` recipe and R seeds;
this module decides the candidates and summarises the retrained runs: per network the mean of
the accuracy objective with a 95% Student-t interval over seeds, the front computed on the means,
and per network the share of bootstrap resamplings of its seeds in which it is non-dominated.
Pure computation on DataFrames and arrays; rendering is :func:`render_markdown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from reports import schema
from reports.pareto import Objective, non_dominated_sort, top_k
from resnetx.errors import ConfigError
from search_spaces.schema import check_candidate_rule

CONFIDENCE = 0.95
RESAMPLES = 2000
NETWORK = schema.TAG_MODEL_HASH  # one network across seeds (the final recipe is the same for every run)
TEST_METRIC, VAL_METRIC = "test_acc", "val_acc"


def accuracy_index(objectives: Sequence[Objective]) -> int:
    """The objective the seed noise is about: the first maximised one."""
    return next((i for i, o in enumerate(objectives) if o.maximize), 0)


def candidates(values: np.ndarray, objectives: Sequence[Objective], rule: str, noise: float | None = None) -> list[int]:
    """Row indices of the search-stage networks to confirm (rows: one per network, finite values).

    ``front``: the non-dominated rows. ``top-K``: the K best by non-dominated sorting with
    MO-ASHA's epsilon-net tie-break. ``within-noise``: every row that would be non-dominated if its
    accuracy objective were better by ``noise`` (the seed noise of that objective: a network that
    lost to the front by less than the noise gets its chance). Indices in row order."""
    maximize = [o.maximize for o in objectives]
    arr = np.asarray(values, dtype=float).reshape(len(values), len(objectives))
    if check_candidate_rule(rule) == "front":
        return [int(i) for i in np.flatnonzero(non_dominated_sort(arr, maximize) == 0)]
    if rule.startswith("top-"):
        return sorted(top_k(arr, maximize, int(rule[4:])))
    if noise is None or not noise >= 0:
        raise ConfigError("confirm.noise", noise, "within-noise needs the seed noise of the accuracy objective, >= 0")
    return within_noise(arr, maximize, accuracy_index(objectives), noise)


def within_noise(values: np.ndarray, maximize: Sequence[bool], index: int, noise: float) -> list[int]:
    """Rows not dominated by any other row once their own objective ``index`` is moved ``noise``
    towards better (the others' values stay): dominated only by a margin larger than the noise."""
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    points = values * sign  # minimisation
    chosen = []
    for i in range(len(points)):
        mine = points[i].copy()
        mine[index] -= noise
        others = np.delete(points, i, axis=0)
        dominated = ((others <= mine).all(axis=1) & (others < mine).any(axis=1)).any()
        if np.isfinite(points[i]).all() and not dominated:
            chosen.append(i)
    return chosen


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean over seeds (NaN bounds for one seed)."""
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return mean, mean - half, mean + half


def confirmed_metric(runs: pd.DataFrame) -> str:
    """What the confirmed front ranks by: test accuracy where the final recipe evaluated it."""
    if TEST_METRIC in runs.columns and runs[TEST_METRIC].notna().any():
        return TEST_METRIC
    return VAL_METRIC


def as_confirmed(objectives: Sequence[Objective], metric: str) -> list[Objective]:
    """The objectives with the accuracy one replaced by ``metric`` (test_acc after a final recipe)."""
    index = accuracy_index(objectives)
    return [Objective(metric, True) if i == index else o for i, o in enumerate(objectives)]


@dataclass
class Confirmed:
    """The confirmed front: one row per network (``table``) and the objectives it is ranked on."""

    table: pd.DataFrame  # NETWORK, seeds, mean, low, high, the other objectives, on_front, front_share
    objectives: list[Objective]
    metric: str
    resamples: int


def summarise(runs: pd.DataFrame, objectives: Sequence[Objective], resamples: int = RESAMPLES,
              seed: int = 0, metric: str | None = None) -> Confirmed:
    """Finished confirm runs -> per network mean and 95% t interval of the accuracy objective, the
    front on the means, and each network's share of bootstrap resamplings (its seeds drawn with
    replacement, every network at once) in which it is non-dominated.

    ``metric`` None: the accuracy objective becomes test accuracy where the final recipe measured
    it (the report's choice); else ``metric`` must be one of ``objectives`` and is the one whose
    seed noise is resampled (the objectives are kept as given). The other objectives are the
    network's mean over its seeds (params and FLOPs are the same for every seed)."""
    done = runs[runs[schema.TAG_STATUS].isin(schema.RANKABLE_STATUSES)] if schema.TAG_STATUS in runs else runs
    if metric is None:
        metric = confirmed_metric(done)
        chosen = as_confirmed(objectives, metric)
    else:
        chosen = list(objectives)
    index = next(i for i, o in enumerate(chosen) if o.name == metric)
    rows, seeds = [], []
    for network, group in done.groupby(NETWORK, sort=False):
        accuracy = group[metric].dropna().to_numpy(dtype=float)
        if not accuracy.size:
            continue
        mean, low, high = t_interval(accuracy)
        row = {NETWORK: network, "seeds": int(accuracy.size), "mean": mean, "low": low, "high": high,
               "sd": float(accuracy.std(ddof=1)) if accuracy.size > 1 else float("nan"),
               "run_ids": list(group["run_id"]) if "run_id" in group else []}
        for o in chosen:
            if o.name != metric:
                row[o.name] = float(pd.to_numeric(group[o.name], errors="coerce").mean())
        rows.append(row)
        seeds.append(accuracy)
    table = pd.DataFrame(rows)
    if table.empty:
        return Confirmed(table, chosen, metric, resamples)
    means = _matrix(table, chosen, metric)
    table["on_front"] = non_dominated_sort(means, [o.maximize for o in chosen]) == 0
    table["front_share"] = bootstrap_front_share(seeds, means, chosen, index, resamples, seed)
    table = table.sort_values(chosen[1 - index].name if len(chosen) > 1 else "mean", kind="stable")
    return Confirmed(table.reset_index(drop=True), chosen, metric, resamples)


def _matrix(table: pd.DataFrame, objectives: Sequence[Objective], metric: str) -> np.ndarray:
    return np.column_stack([table["mean" if o.name == metric else o.name].to_numpy(dtype=float) for o in objectives])


def bootstrap_front_share(seeds: Sequence[np.ndarray], means: np.ndarray, objectives: Sequence[Objective],
                          index: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Per network, the share of ``resamples`` bootstrap draws in which it is on the front: each
    draw replaces every network's accuracy mean by the mean of its seeds drawn with replacement
    (the other objectives are exact), and ranks them all together."""
    rng = np.random.default_rng(seed)
    maximize = [o.maximize for o in objectives]
    counts = np.zeros(len(seeds))
    for _ in range(resamples):
        drawn = means.copy()
        drawn[:, index] = [rng.choice(s, size=s.size, replace=True).mean() for s in seeds]
        counts += non_dominated_sort(drawn, maximize) == 0
    return counts / resamples


def is_confirm_stage(parent_tags: dict[str, str] | None) -> bool:
    """True for a confirm stage's parent run (tag stage=confirm)."""
    return bool(parent_tags) and parent_tags.get(schema.TAG_STAGE) == schema.STAGE_CONFIRM


def best_seed_rows(runs: pd.DataFrame, confirmed: Confirmed) -> pd.DataFrame:
    """One run per network on the confirmed front, its best seed by validation accuracy (the test
    split chooses nothing), in the front's order: what ``export --front`` of a confirm stage
    writes, and whose weights."""
    front = confirmed.table[confirmed.table["on_front"]] if not confirmed.table.empty else confirmed.table
    done = runs[runs[schema.TAG_STATUS].isin(schema.RANKABLE_STATUSES)]
    picked = []
    for network in front[NETWORK] if not front.empty else []:
        by = VAL_METRIC if VAL_METRIC in done.columns else confirmed.metric
        mine = done[done[NETWORK] == network].dropna(subset=[by])
        if len(mine):
            picked.append(mine[by].idxmax())
    return runs.loc[picked]


def provenance_of(confirmed: Confirmed, network: str, confirm_of: str | None) -> dict:
    """What an exported config says about its confirmation: mean, interval, seeds, front share."""
    row = confirmed.table.set_index(NETWORK).loc[network]
    return {"metric": confirmed.metric, "mean": float(row["mean"]),
            f"interval_{int(CONFIDENCE * 100)}": [float(row["low"]), float(row["high"])],
            "seeds": int(row["seeds"]), "run_ids": list(row["run_ids"]),
            "on_front_share": float(row["front_share"]), "resamples": confirmed.resamples,
            "search_sweep_run_id": confirm_of}


def survivors(confirmed: Confirmed, search_front: Sequence[str]) -> int:
    """How many search-stage front members (by network) are on the confirmed front."""
    on = set(confirmed.table.loc[confirmed.table["on_front"], NETWORK]) if not confirmed.table.empty else set()
    return sum(network in on for network in search_front)


def render_markdown(confirmed: Confirmed, search_front: pd.DataFrame | None, recipe: dict | None) -> str:
    """The report's "Confirmed front" section."""
    t = confirmed.table
    lines = ["## Confirmed front", ""]
    if t.empty:
        return "\n".join([*lines, "No confirm run finished yet.", ""])
    others = [o for o in confirmed.objectives if o.name != confirmed.metric]
    lines += [f"Each candidate retrained with the final recipe and {int(t['seeds'].max())} seeds; {confirmed.metric} "
              f"is the mean over seeds with its {int(CONFIDENCE * 100)}% t interval; the front is computed on the "
              f"means; \"on the front in\" is the share of {confirmed.resamples} bootstrap resamplings of the seeds "
              "in which the network is non-dominated.", ""]
    if recipe:
        lines += ["Final recipe: " + ", ".join(f"{k}={v}" for k, v in sorted(recipe.items())), ""]
    head = ["network", "seeds", f"{confirmed.metric} mean [95% interval]", *[o.name for o in others],
            "on the confirmed front", "on the front in"]
    lines += ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for _, row in t.iterrows():
        cells = [str(row[NETWORK])[:12], str(row["seeds"]), f"{row['mean']:.4f} [{row['low']:.4f}, {row['high']:.4f}]",
                 *[f"{row[o.name]:,.0f}" if abs(row[o.name]) >= 100 else f"{row[o.name]:.4g}" for o in others],
                 "yes" if row["on_front"] else "no", f"{row['front_share'] * 100:.0f}% of resamples"]
        lines.append("| " + " | ".join(cells) + " |")
    if search_front is not None:
        networks = list(search_front[NETWORK])
        lines += ["", f"Search-stage front: {len(networks)} networks; {survivors(confirmed, networks)} of them "
                      f"are on the confirmed front ({int(t['on_front'].sum())} networks)."]
    return "\n".join([*lines, ""])
