"""From a trials DataFrame to the numbers a report shows: ranks, front, knee, hypervolume,
best network per budget, fold ablation. Pandas in, pandas out; no files, no MLflow, no plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reports import schema
from reports.hypervolume import hypervolume, hypervolume_curve, normalised_hypervolume
from reports.pareto import (
    LOG_SCALE_OBJECTIVES,
    UNRANKED,
    Objective,
    default_reference,
    knee_point,
    non_dominated_sort,
)
from resnetx.errors import ConfigError

RANK, ON_FRONT = schema.TAG_PARETO_RANK, schema.TAG_ON_FRONT
_SCRATCH_VALUES = {"", "none", "null", "scratch", "false", "0", "random"}


@dataclass
class Analysis:
    """Everything a report renders, computed once."""

    objectives: list[Objective]
    ranked: pd.DataFrame  # rankable-status trials + pareto_rank, on_front; best first
    failed: pd.DataFrame  # every other trial (stopped early, diverged, failed, running)
    front: pd.DataFrame  # pareto_rank == 0, sorted along the front
    knee_run_id: str | None
    reference: list[float] | None
    hypervolume: float
    hypervolume_normalised: float
    hypervolume_curve: list[float]  # one value per trial, all trials in start order
    accuracy: str | None  # the maximised objective plots and budgets use (e.g. val_acc)
    budgets: pd.DataFrame  # best network under each parameter budget
    ablation: pd.DataFrame | None  # accuracy per fold and start (scratch / warm), or None
    varying: list[str] = field(default_factory=list)  # config params that differ between trials
    stopped: pd.DataFrame = field(default_factory=pd.DataFrame)  # stopped early: shown apart, with their epochs
    reference_source: str = ""  # where the hypervolume reference point came from (said in the report)
    at_epoch: int | None = None  # ranked at this common epoch instead of at the end


def check_objectives(frame: pd.DataFrame, objectives: Sequence[Objective],
                     metric_columns: Sequence[str]) -> pd.DataFrame:
    """An objective no trial logged is a typo when some trial finished; otherwise (nothing
    finished yet) it is just not measured yet: the column is added as NaN and the front is empty."""
    finished = frame[schema.TAG_STATUS].isin(schema.RANKABLE_STATUSES).any()
    for o in objectives:
        if o.name not in frame.columns:
            if finished:
                known = ", ".join(metric_columns) or "none"
                raise ConfigError("--objectives", o.name, f"is not a metric of these runs; metrics: {known}")
            frame = frame.assign(**{o.name: np.nan})
    return frame


def rank_trials(frame: pd.DataFrame, objectives: Sequence[Objective],
                statuses: Sequence[str] = schema.RANKABLE_STATUSES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split trials into rankable (by default: trained to the end) and the rest, and rank the former.

    Rankable trials with a missing or non-finite objective get rank -1: listed, never on the front.
    """
    rankable = frame[schema.TAG_STATUS].isin(statuses)
    ranked, failed = frame[rankable].copy(), frame[~rankable].copy()
    values = ranked[[o.name for o in objectives]].to_numpy(dtype=float)
    ranked[RANK] = non_dominated_sort(values, [o.maximize for o in objectives])
    ranked[ON_FRONT] = ranked[RANK] == 0
    order = ranked[RANK].where(ranked[RANK] != UNRANKED, np.iinfo(np.int64).max)
    first = objectives[0]
    key = ranked[first.name] * (-1 if first.maximize else 1)
    ranked = ranked.assign(_order=order, _key=key).sort_values(["_order", "_key"], kind="stable", na_position="last")
    return ranked.drop(columns=["_order", "_key"]).reset_index(drop=True), failed.reset_index(drop=True)


def accuracy_objective(objectives: Sequence[Objective]) -> str | None:
    """The first maximised objective: what "best network" means for budgets and plots."""
    return next((o.name for o in objectives if o.maximize), None)


def round_up(value: float, digits: int = 2) -> float:
    """Round up to ``digits`` significant digits: 44,370 -> 45,000."""
    scale = 10 ** (math.floor(math.log10(value)) - digits + 1)
    return float(math.ceil(value / scale - 1e-9) * scale)


def default_budgets(params: pd.Series, count: int = 4) -> list[float]:
    """``count`` budgets spaced evenly on a log scale from the smallest to the largest trial.

    Log spacing matches the plot's axis and, unlike quantiles, does not collapse when most
    trials have similar sizes. Rounded up to 2 significant digits, so the smallest budget
    still admits the smallest network.
    """
    values = params.to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return []
    lo, hi = float(values.min()), float(values.max())
    return sorted({round_up(v) for v in np.geomspace(lo, hi, count)})


def best_under_budgets(ranked: pd.DataFrame, budgets: Sequence[float], accuracy: str | None,
                       show: Sequence[str]) -> pd.DataFrame:
    """For each budget, the most accurate ranked trial with at most that many parameters."""
    columns = ["budget", *show]
    p = schema.PARAMS_METRIC
    if accuracy is None or p not in ranked.columns or accuracy not in ranked.columns:
        return pd.DataFrame(columns=columns)
    usable = ranked[np.isfinite(ranked[p].to_numpy(dtype=float)) & np.isfinite(ranked[accuracy].to_numpy(dtype=float))]
    rows = []
    for budget in budgets:
        within = usable[usable[p] <= budget]
        if within.empty:
            rows.append({"budget": budget})
            continue
        best = within.sort_values([accuracy, p], ascending=[False, True], kind="stable").iloc[0]
        rows.append({"budget": budget, **{c: best.get(c) for c in show}})
    return pd.DataFrame(rows, columns=columns)


def is_warm(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return str(value).strip().lower() not in _SCRATCH_VALUES


def fold_ablation(ranked: pd.DataFrame, accuracy: str | None,
                  param_columns: Sequence[str] = ()) -> pd.DataFrame | None:
    """The fold ablation table (``reports.ablation``): per fold and start, spread and CI vs fold 1.

    Present only when the ranked trials use at least two folds. Without a warm-start param
    every trial counts as "from scratch". The table's ``attrs["metric"]`` names the accuracy
    its mean/std/CI columns are of (``test_acc`` when the trials evaluated the test split).
    """
    from reports.ablation import ablation_table, cell_starts

    fold = schema.FOLD_PARAM
    if accuracy is None or fold not in ranked.columns or accuracy not in ranked.columns:
        return None
    data = ranked[np.isfinite(ranked[accuracy].to_numpy(dtype=float))]
    if data[fold].nunique(dropna=True) < 2:
        return None
    warm_column = next((c for c in schema.WARM_START_PARAMS if c in data.columns), None)
    warm = data[warm_column].map(is_warm) if warm_column else pd.Series(False, index=data.index)
    return ablation_table(cell_starts(data, warm), accuracy, param_columns)


def varying_params(frame: pd.DataFrame, param_columns: Sequence[str]) -> list[str]:
    """Config params that take more than one value across the trials (what the sweep searched)."""
    out = []
    for column in param_columns:
        if column in frame.columns and frame[column].map(repr).nunique() > 1:
            out.append(column)
    return out


def analyse(frame: pd.DataFrame, objectives: Sequence[Objective], param_columns: Sequence[str],
            metric_columns: Sequence[str], budgets: Sequence[float] | None = None,
            reference: Sequence[float] | None = None, reference_source: str = "",
            at_epoch: int | None = None) -> Analysis:
    """Rank, find the front and its knee, measure hypervolume, pick the best network per budget.

    Fronts compare like with like: only trials trained to the end are ranked, and trials a
    scheduler stopped are listed apart with the epoch they stopped at. With ``at_epoch`` the
    caller has put every trial's value *at that epoch* in the frame; then finished and stopped
    trials that reached it are ranked together. ``reference``: the hypervolume reference point
    (say where it came from in ``reference_source``); without one, the rule of
    ``reports.pareto.default_reference`` on these trials, which moves with outliers.
    """
    objectives = list(objectives)
    frame = check_objectives(frame, objectives, metric_columns)
    maximize = [o.maximize for o in objectives]
    names = [o.name for o in objectives]
    statuses = schema.COMPLETED_STATUSES if at_epoch is not None else schema.RANKABLE_STATUSES
    ranked, failed = rank_trials(frame, objectives, statuses)
    stopped = failed[failed[schema.TAG_STATUS] == schema.STATUS_STOPPED].reset_index(drop=True)
    front = ranked[ranked[RANK] == 0]
    sort_by = schema.PARAMS_METRIC if schema.PARAMS_METRIC in names else names[0]
    front = front.sort_values(sort_by, kind="stable").reset_index(drop=True)

    knee_run_id = None
    if len(front):
        log = [n in LOG_SCALE_OBJECTIVES for n in names]
        knee_run_id = str(front.iloc[knee_point(front[names].to_numpy(float), maximize, log)]["run_id"])

    finite = ranked[ranked[RANK] != UNRANKED]
    ref: list[float] | None = None
    hv = hv_norm = 0.0
    if reference is not None:
        if len(reference) != len(objectives):
            raise ConfigError("--reference", list(reference), f"must have one value per objective ({len(names)})")
        ref = [float(v) for v in reference]
        reference_source = reference_source or "given"
    elif len(finite):
        ref = [float(v) for v in default_reference(finite[names].to_numpy(float), maximize)]
        reference_source = ("from these trials (reports.pareto.default_reference): it moves with the worst "
                            "trials, so compare hypervolumes of sweeps only with a fixed reference")
    # every trial in start order; trials that cannot be ranked count but add nothing
    all_values = frame[names].to_numpy(dtype=float).copy()
    all_values[~frame[schema.TAG_STATUS].isin(statuses).to_numpy()] = np.nan
    curve = [0.0] * len(frame)
    if ref is not None:
        hv = hypervolume(front[names].to_numpy(float), ref, maximize) if len(front) else 0.0
        hv_norm = normalised_hypervolume(hv, finite[names].to_numpy(float), ref, maximize) if len(finite) else 0.0
        curve = hypervolume_curve(all_values, maximize, ref)

    accuracy = accuracy_objective(objectives)
    if budgets is None:
        budgets = default_budgets(finite[schema.PARAMS_METRIC]) if schema.PARAMS_METRIC in finite.columns else []
    varying = varying_params(frame, param_columns)
    show = list(dict.fromkeys(["run_name", "trial_id", *names, schema.PARAMS_METRIC, *varying, ON_FRONT, "run_id"]))
    show = [c for c in show if c in ranked.columns]
    return Analysis(objectives=objectives, ranked=ranked, failed=failed, front=front, knee_run_id=knee_run_id,
                    reference=ref, hypervolume=hv, hypervolume_normalised=hv_norm, hypervolume_curve=curve,
                    accuracy=accuracy, budgets=best_under_budgets(ranked, sorted(budgets), accuracy, show),
                    ablation=fold_ablation(ranked, accuracy, param_columns), varying=varying,
                    stopped=stopped, reference_source=reference_source, at_epoch=at_epoch)
