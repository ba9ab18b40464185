"""Sweeps as pandas DataFrames: read one back, rank any subset, measure and plot its front.

The notebook half of ``reports`` (``from reports import load_sweep, pareto_front, ...``). The
computation is not done again here: ranks come from ``reports.pareto``, hypervolume from
``reports.hypervolume``, the figure from ``reports.plots`` (the report's own), the sweep from
``reports.runs``. What this module adds is the frame-level glue, so that a user can filter a
sweep with pandas (``df[df["model.fold"] == 2]``) and rank exactly that subset.

Rules every function here shares:

- ``objectives``: ``"val_acc:max,params:min"``, a list of ``Objective``, or None for the
  frame's own (``df.attrs["objectives"]``, which :func:`load_sweep` sets to the sweep's
  objectives) and else ``val_acc:max,params:min``.
- Only trials whose ``status`` column says ``finished`` are ranked (``schema.RANKABLE_STATUSES``:
  a trial stopped early has fewer epochs, and a diverged trial's tiny network with accuracy 0
  must not stand on a front); a frame without a
  ``status`` column has every row ranked. Rows with a missing or non-finite objective get rank
  -1 (unranked) and never count, as in the report.
"""

from __future__ import annotations

import io
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reports import confirm, schema
from reports.hypervolume import hypervolume as _hypervolume
from reports.pareto import (
    DEFAULT_OBJECTIVES,
    LOG_SCALE_OBJECTIVES,
    Objective,
    default_reference,
    format_objectives,
    knee_point,
    non_dominated_sort,
    parse_objectives,
)
from resnetx.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ObjectivesSpec = str | Sequence[Objective] | None
EPOCHS = schema.EPOCHS_METRIC  # column: epochs a trial trained (reports.history.epochs_trained)
CONFIG_PREFIXES = ("model.", "data.", "train.")

__all__ = ["hypervolume", "knee", "load_sweep", "objectives_of", "pareto_front", "pareto_rank", "plot_front",
           "reference_point"]


# -- objectives and values --------------------------------------------------------------
def objectives_of(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> list[Objective]:
    """The objectives to rank ``df`` on (see the module docstring for the default)."""
    if objectives is None:
        objectives = df.attrs.get("objectives") or DEFAULT_OBJECTIVES
    if isinstance(objectives, str):
        return parse_objectives(objectives, field="objectives")
    chosen = list(objectives)
    if not chosen or not all(isinstance(o, Objective) for o in chosen):
        raise ConfigError("objectives", objectives, "must be text like 'val_acc:max,params:min' or Objective objects")
    return chosen


def _values(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    for o in objectives:
        if o.name not in df.columns:
            numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
            raise ConfigError("objectives", o.name, f"is not a column of this DataFrame; numeric columns: "
                              f"{', '.join(map(str, numeric)) or 'none'}")
    return df[[o.name for o in objectives]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def _rankable(df: pd.DataFrame) -> np.ndarray:
    if schema.TAG_STATUS not in df.columns:
        return np.ones(len(df), dtype=bool)
    return df[schema.TAG_STATUS].isin(schema.RANKABLE_STATUSES).to_numpy()


def _ranked_values(df: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """Objective values of the rows that may be ranked; the others become NaN (never counted)."""
    values = _values(df, objectives).copy()
    values[~_rankable(df)] = np.nan
    return values


# -- ranking ----------------------------------------------------------------------------
def pareto_rank(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> pd.Series:
    """Pareto rank of every row (0 = the front, 1 = the front once 0 is removed, ...; -1 = unranked)."""
    chosen = objectives_of(df, objectives)
    ranks = non_dominated_sort(_ranked_values(df, chosen), [o.maximize for o in chosen])  # -1: UNRANKED
    return pd.Series(ranks, index=df.index, name=schema.TAG_PARETO_RANK, dtype=int)


def _front_order(front: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """Along the front, as the report lists it: by params when that is an objective, else the first one."""
    names = [o.name for o in objectives]
    by = schema.PARAMS_METRIC if schema.PARAMS_METRIC in names else names[0]
    return front.sort_values(by, kind="stable")


def pareto_front(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> pd.DataFrame:
    """The rows of ``df`` on its Pareto front (rank 0 among ``df``'s own rows), sorted along the front.

    The index of ``df`` is kept, so the rows can be found again in the full frame. A confirm
    stage's frame (every row ``stage == "confirm"``) holds several seeds of each network, and
    ranking single seeds would put a lucky seed on the front: there the front is of networks,
    ranked on their seed means (:func:`confirmed_front`).
    """
    if is_confirm_frame(df):
        return confirmed_front(df, objectives)
    chosen = objectives_of(df, objectives)
    ranks = pareto_rank(df, chosen)
    return _front_order(df.loc[ranks == 0], chosen)


def is_confirm_frame(df: pd.DataFrame) -> bool:
    """True when every row is a confirm-stage run of a network (``stage`` and ``model_hash`` columns)."""
    return (len(df) > 0 and schema.TAG_STAGE in df.columns and schema.TAG_MODEL_HASH in df.columns
            and bool((df[schema.TAG_STAGE] == schema.STAGE_CONFIRM).all()))


def confirmed_front(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> pd.DataFrame:
    """The confirmed front of a confirm stage's runs: one row per network on the front of the means.

    Each row is the network's first run (its config columns) with the accuracy objective replaced
    by the mean over its finished seeds, and the columns ``seeds``, ``low``/``high`` (the 95% t
    interval), ``sd`` and ``front_share`` (share of bootstrap resamplings of the seeds in which the
    network is on the front) added, as the report's "Confirmed front" (``reports.confirm``).
    With ``objectives`` None the accuracy objective is test accuracy where the final recipe
    measured it, as in the report; named objectives are used as given.
    """
    chosen = objectives_of(df, objectives)
    _values(df, chosen)  # a missing objective column is a one-line error here too
    metric = None if objectives is None else chosen[confirm.accuracy_index(chosen)].name
    summary = confirm.summarise(df, chosen, metric=metric)
    if summary.table.empty:
        return df.iloc[0:0]
    table = summary.table[summary.table["on_front"]].set_index(schema.TAG_MODEL_HASH)
    first = df.drop_duplicates(schema.TAG_MODEL_HASH)
    front = first[first[schema.TAG_MODEL_HASH].isin(table.index)].copy()
    stats = table.loc[front[schema.TAG_MODEL_HASH]]
    front[summary.metric] = stats["mean"].to_numpy()
    for column in ("seeds", "low", "high", "sd", "front_share"):
        front[column] = stats[column].to_numpy()
    return _front_order(front, summary.objectives)


def reference_point(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> list[float]:
    """The report's default hypervolume reference for ``df``: each objective's worst ranked value,
    pushed 10 % of its range further (``reports.pareto.default_reference``)."""
    chosen = objectives_of(df, objectives)
    values = _ranked_values(df, chosen)
    values = values[np.isfinite(values).all(axis=1)]
    if not len(values):
        raise ConfigError("df", f"{len(df)} rows", "has no rankable row with finite objectives: no reference point")
    return [float(v) for v in default_reference(values, [o.maximize for o in chosen])]


def _reference(reference: Sequence[float] | Mapping[str, float], objectives: Sequence[Objective]) -> list[float]:
    names = [o.name for o in objectives]
    if isinstance(reference, Mapping):
        missing = [n for n in names if n not in reference]
        if missing or set(reference) - set(names):
            raise ConfigError("reference", dict(reference), f"must give exactly the objectives {', '.join(names)}")
        reference = [reference[n] for n in names]
    values = [float(v) for v in reference]
    if len(values) != len(names) or not np.isfinite(values).all():
        raise ConfigError("reference", list(reference), f"must be one finite value per objective ({', '.join(names)})")
    return values


def hypervolume(df: pd.DataFrame, objectives: ObjectivesSpec = None,
                reference: Sequence[float] | Mapping[str, float] | None = None) -> float:
    """Exact hypervolume dominated by ``df``'s ranked rows, bounded by ``reference``.

    ``reference`` is in the objectives' own units (a list in objective order, or a dict by
    name); by default :func:`reference_point` of ``df`` itself. Give two subsets the same
    reference to compare them: each subset's own default would measure each in its own box.
    A frame with no rankable row has hypervolume 0.0.
    """
    chosen = objectives_of(df, objectives)
    values = _ranked_values(df, chosen)
    values = values[np.isfinite(values).all(axis=1)]
    if reference is None:
        if not len(values):
            return 0.0
        ref = reference_point(df, chosen)
    else:
        ref = _reference(reference, chosen)
    return float(_hypervolume(values, ref, [o.maximize for o in chosen])) if len(values) else 0.0


def knee(df: pd.DataFrame, objectives: ObjectivesSpec = None) -> pd.Series:
    """The front's knee point, as a row of ``df``: the report's rule (``reports.pareto.knee_point``,
    params/FLOPs/latency on log axes), so on a whole sweep it is the report's knee."""
    chosen = objectives_of(df, objectives)
    front = pareto_front(df, chosen)
    if front.empty:
        raise ConfigError("df", f"{len(df)} rows", "has no front (no finished trial with finite objectives)")
    names = [o.name for o in chosen]
    index = knee_point(front[names].to_numpy(dtype=float), [o.maximize for o in chosen],
                       [n in LOG_SCALE_OBJECTIVES for n in names])
    return front.iloc[index]


# -- the figure -------------------------------------------------------------------------
def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_front(df: pd.DataFrame, objectives: ObjectivesSpec = None, title: str | None = None) -> Figure:
    """The report's accuracy-vs-parameters figure (``pareto.png``) of ``df``, as a matplotlib Figure.

    Needs a maximised objective (the y axis) and a ``params`` column (the log x axis); colour
    is the fold, marker the unit, black rings the front of all objectives, the red star the
    knee. Shown inline when it is a Jupyter cell's value; ``fig.savefig("front.png")`` elsewhere.
    """
    from reports.analysis import analyse
    from reports.plots import pareto_figure

    chosen = objectives_of(df, objectives)
    _values(df, chosen)  # a missing objective column is named here, in one line
    frame = df
    if schema.TAG_STATUS not in frame.columns:  # a hand-made frame: every row counts
        frame = frame.assign(**{schema.TAG_STATUS: schema.STATUS_FINISHED})
    if "run_id" not in frame.columns:  # the figure finds the knee by run id
        frame = frame.assign(run_id=[str(i) for i in frame.index])
    params = [c for c in frame.columns if isinstance(c, str) and c.startswith(CONFIG_PREFIXES)]
    metrics = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c not in params]
    figure = pareto_figure(analyse(frame.reset_index(drop=True), chosen, params, metrics))
    if figure is None:
        accuracy = next((o.name for o in chosen if o.maximize), None)
        raise ConfigError("df", f"{len(df)} rows", f"has nothing to plot: the figure needs a maximised objective "
                          f"(got {accuracy}), a positive {schema.PARAMS_METRIC} column and finished rows")
    if title is not None:
        figure.axes[0].set_title(title)
    # matplotlib's pyplot-free Figure has no _repr_png_ of its own: IPython shows it inline only
    # after pyplot was imported with the inline backend. Give it one, so a cell's value is the image.
    figure._repr_png_ = types.MethodType(_png, figure)  # type: ignore[attr-defined]
    return figure


# -- reading a sweep --------------------------------------------------------------------
def _tracking_uri(runs_dir: str | Path | None, tracking_uri: str | None) -> str:
    """``runs_dir`` (the folder of ``mlflow.db``) or a tracking URI: exactly one of them."""
    if (runs_dir is None) == (tracking_uri is None):
        raise ConfigError("runs_dir", runs_dir, "give runs_dir= (the folder holding mlflow.db) or tracking_uri=, "
                          "exactly one of them")
    if tracking_uri is not None:
        if "://" not in tracking_uri:
            raise ConfigError("tracking_uri", tracking_uri, "must be an MLflow store URI: sqlite:///PATH/mlflow.db, "
                              "http(s)://HOST:PORT or a database URI")
        return tracking_uri
    db = Path(runs_dir).expanduser().resolve() / "mlflow.db"  # type: ignore[arg-type]
    if not db.is_file():
        raise ConfigError("runs_dir", str(runs_dir), "holds no MLflow store (mlflow.db); run a sweep there first")
    return f"sqlite:///{db}"


def _column_order(frame: pd.DataFrame, objectives: Sequence[Objective], metrics: Sequence[str]) -> list[str]:
    """Ids and outcome first, then objectives and metrics, then the config (model.*, data.*, train.*), then the rest."""
    lead = ["run_id", schema.TAG_TRIAL_ID, schema.TAG_STATUS, EPOCHS, schema.TAG_PARETO_RANK,
            *(o.name for o in objectives), *metrics]
    config = sorted(c for c in frame.columns if isinstance(c, str) and c.startswith(CONFIG_PREFIXES))
    return [c for c in dict.fromkeys([*lead, *config, *frame.columns]) if c in frame.columns]


def load_sweep(runs_dir: str | Path | None = None, *, tracking_uri: str | None = None,
              experiment: str = schema.DEFAULT_EXPERIMENT,
               sweep: str | None = None, objectives: ObjectivesSpec = None) -> pd.DataFrame:
    """One sweep from MLflow as a DataFrame: one row per trial, in the order the trials started.

    Columns: ``run_id``, ``trial_id``, ``status``, ``epochs`` (trained), ``pareto_rank`` (on
    ``objectives``, default the sweep's own; -1 = unranked), the final metrics (``val_acc``,
    ``best_val_acc``, ``params``, ``flops``, ``latency_ms``, ...), the flattened config
    (``model.fold``, ``data.subset``, ``train.lr``, ...), then hashes, names and times.
    ``sweep``: the sweep's parent run id; by default the sweep ``reports.runs.read_sweep_runs``
    picks (the experiment's latest). ``df.attrs`` holds ``objectives``, ``sweep_run_id``,
    ``tracking_uri`` and ``experiment``, so the other functions here default to the sweep's objectives.
    """
    from reports.analysis import check_objectives
    from reports.history import epochs_trained
    from reports.mlflow_io import client as mlflow_client
    from reports.runs import read_sweep_runs, resolve_objectives

    uri = _tracking_uri(runs_dir, tracking_uri)
    runs = read_sweep_runs(uri, experiment, sweep)
    if isinstance(objectives, str):
        objectives = parse_objectives(objectives, field="objectives")
    chosen = resolve_objectives(objectives, runs)
    frame = check_objectives(runs.trials, chosen, runs.metric_columns)
    frame = frame.assign(**{EPOCHS: epochs_trained(frame, mlflow_client(uri))})
    frame[schema.TAG_PARETO_RANK] = pareto_rank(frame, chosen)
    frame = frame[_column_order(frame, chosen, runs.metric_columns)].reset_index(drop=True)
    frame.attrs = {"objectives": format_objectives(chosen), "sweep_run_id": runs.sweep_run_id,
                   "tracking_uri": uri, "experiment": experiment}
    return frame
