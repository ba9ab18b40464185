"""The report's figures, each drawn twice: a PNG (matplotlib, no display needed) and an
interactive plotly figure. Input is an :class:`~reports.analysis.Analysis`; output is files.

matplotlib is used through ``matplotlib.figure.Figure`` directly (never ``pyplot``), so no
backend or global figure state is touched: safe inside a sweep driver or a test process.
All interactive figures go into one HTML file with plotly.js inlined once (machines may be
offline; a CDN link would leave a blank page), which keeps the report folder at ~5 MB.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports import schema
from reports.analysis import ON_FRONT, RANK, Analysis
from reports.pareto import non_dominated_sort

MARKERS_MPL = ("o", "s", "^", "D", "v", "P", "X", "*")
MARKERS_PLOTLY = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "x", "star")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
FIGSIZE = (8.0, 4.8)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "?" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _points(analysis: Analysis) -> pd.DataFrame | None:
    """Ranked trials with finite accuracy and parameter count, or None when there are none."""
    acc, p = analysis.accuracy, schema.PARAMS_METRIC
    data = analysis.ranked
    if acc is None or p not in data.columns or acc not in data.columns:
        return None
    data = data[np.isfinite(data[acc].to_numpy(float)) & (data[p].to_numpy(float) > 0)]
    return data if len(data) else None


def _front_2d(data: pd.DataFrame, acc: str) -> pd.DataFrame:
    """The accuracy-vs-parameters staircase (the front of these two objectives alone), by params."""
    ranks = non_dominated_sort(data[[acc, schema.PARAMS_METRIC]].to_numpy(float), [True, False])
    return data[ranks == 0].sort_values([schema.PARAMS_METRIC, acc], kind="stable")


def _groups(data: pd.DataFrame, column: str) -> list[Any]:
    if column not in data.columns:
        return [None]
    values = data[column].map(_label)
    return sorted(values.unique(), key=lambda v: (len(v), v))


def _fold_unit(data: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    folds = data[schema.FOLD_PARAM].map(_label) if schema.FOLD_PARAM in data.columns else pd.Series("?", data.index)
    units = data[schema.UNIT_PARAM].map(_label) if schema.UNIT_PARAM in data.columns else pd.Series("?", data.index)
    return folds, units


# -- matplotlib (PNG) ---------------------------------------------------------------------


def _new_figure():
    from matplotlib.figure import Figure

    # fixed margins: constrained layout would draw every figure twice (~0.3 s each)
    fig = Figure(figsize=FIGSIZE, dpi=110)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.11)
    return fig, fig.add_subplot()


def pareto_png(analysis: Analysis, path: Path) -> Path | None:
    fig = pareto_figure(analysis)
    if fig is None:
        return None
    fig.savefig(path)
    return path


def pareto_figure(analysis: Analysis):
    """The figure of ``pareto.png`` (None when no trial has an accuracy and a parameter count);
    ``reports.plot_front`` returns it to notebooks, so they see exactly what the report shows."""
    from matplotlib.lines import Line2D

    data = _points(analysis)
    if data is None:
        return None
    acc, p = analysis.accuracy, schema.PARAMS_METRIC
    fig, ax = _new_figure()
    folds, units = _fold_unit(data)
    fold_names, unit_names = sorted(folds.unique(), key=lambda v: (len(v), v)), sorted(units.unique())
    for i, fold in enumerate(fold_names):
        for j, unit in enumerate(unit_names):
            part = data[(folds == fold) & (units == unit)]
            if part.empty:
                continue
            marker = MARKERS_MPL[j % len(MARKERS_MPL)]
            ax.scatter(part[p], part[acc], c=PALETTE[i % len(PALETTE)], marker=marker, s=46, edgecolors="none",
                       alpha=0.9, zorder=3)
            ring = part[part[ON_FRONT].to_numpy(dtype=bool)]  # front members: a black outline on top
            ax.scatter(ring[p], ring[acc], marker=marker, s=46, facecolors="none", edgecolors="black",
                       linewidths=1.2, zorder=3.5)
    front = _front_2d(data, acc)
    ax.step(front[p], front[acc], where="post", color="black", linewidth=1.2, zorder=2, label="front")
    knee = data[data["run_id"] == analysis.knee_run_id]
    if len(knee):
        ax.scatter(knee[p], knee[acc], marker="*", s=260, facecolors="none", edgecolors="crimson",
                   linewidths=1.5, zorder=4)
        ax.annotate("knee", (knee[p].iloc[0], knee[acc].iloc[0]), textcoords="offset points", xytext=(8, -14),
                    color="crimson")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(acc)
    ax.set_title(f"{acc} vs parameters: {len(data)} trials, {int(data[ON_FRONT].sum())} on the front")
    ax.grid(True, which="both", alpha=0.25)
    fold_handles = [Line2D([], [], marker="o", linestyle="", color=PALETTE[i % len(PALETTE)], label=f"fold {f}")
                    for i, f in enumerate(fold_names)]
    unit_handles = [Line2D([], [], marker=MARKERS_MPL[j % len(MARKERS_MPL)], linestyle="", color="grey", label=u)
                    for j, u in enumerate(unit_names)]
    extra = [Line2D([], [], color="black", label="front (step)"),
             Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black",
                    label="on front (all objectives)")]
    fig.subplots_adjust(right=0.74)
    ax.legend(handles=fold_handles + unit_handles + extra, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def hypervolume_png(analysis: Analysis, path: Path) -> Path | None:
    curve = analysis.hypervolume_curve
    if not curve or analysis.reference is None:
        return None
    fig, ax = _new_figure()
    x = np.arange(1, len(curve) + 1)
    ax.plot(x, curve, marker="o", markersize=3.5, drawstyle="steps-post")
    ax.set_xlabel("trials (in start order)")
    ax.set_ylabel("hypervolume")
    ref = ", ".join(f"{o.name}={v:.4g}" for o, v in zip(analysis.objectives, analysis.reference))
    ax.set_title(f"hypervolume vs trial count (reference {ref})", fontsize=10)
    ax.grid(True, alpha=0.25)
    fig.savefig(path)
    return path


def ablation_png(analysis: Analysis, path: Path) -> Path | None:
    table = analysis.ablation
    if table is None:
        return None
    fig, ax = _new_figure()
    metric = table.attrs.get("metric", analysis.accuracy)
    starts = list(table["start"].unique())
    for i, start in enumerate(starts):
        part = table[table["start"] == start]
        offset = (i - (len(starts) - 1) / 2) * 0.08
        ax.errorbar(part[schema.FOLD_PARAM] + offset, part["mean"], yerr=part["std"], marker="o", capsize=4,
                    label=f"{start} (mean ± std, {_spread_words(part)})", color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(sorted(table[schema.FOLD_PARAM].unique()))
    ax.set_xlabel("fold")
    ax.set_ylabel(metric)
    ax.set_title(f"fold ablation: {metric} by fold")
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8)
    fig.savefig(path)
    return path


# -- plotly (interactive) ------------------------------------------------------------------


def _hover(data: pd.DataFrame, columns: list[str]) -> list[str]:
    rows = []
    for _, row in data.iterrows():
        parts = [f"<b>{html.escape(str(row.get('run_name') or row['run_id']))}</b>"]
        parts += [f"{html.escape(c)}: {html.escape(_label(row.get(c)))}" for c in columns if c in row.index]
        rows.append("<br>".join(parts))
    return rows


def pareto_plotly(analysis: Analysis):
    import plotly.graph_objects as go

    data = _points(analysis)
    if data is None:
        return None
    acc, p = analysis.accuracy, schema.PARAMS_METRIC
    folds, units = _fold_unit(data)
    fold_names, unit_names = sorted(folds.unique(), key=lambda v: (len(v), v)), sorted(units.unique())
    hover_columns = [o.name for o in analysis.objectives] + [p] + analysis.varying + [RANK, "trial_id", "run_id"]
    fig = go.Figure()
    for i, fold in enumerate(fold_names):
        for j, unit in enumerate(unit_names):
            part = data[(folds == fold) & (units == unit)]
            if part.empty:
                continue
            fig.add_trace(go.Scatter(
                x=part[p], y=part[acc], mode="markers", name=f"fold {fold}, {unit}",
                marker={"color": PALETTE[i % len(PALETTE)], "symbol": MARKERS_PLOTLY[j % len(MARKERS_PLOTLY)],
                        "size": 10, "line": {"color": np.where(part[ON_FRONT], "black", "white").tolist(),
                                             "width": 1.5}},
                hovertext=_hover(part, hover_columns), hoverinfo="text"))
    front = _front_2d(data, acc)
    fig.add_trace(go.Scatter(x=front[p], y=front[acc], mode="lines", line_shape="hv", name="front",
                             line={"color": "black", "width": 1.5}, hoverinfo="skip"))
    knee = data[data["run_id"] == analysis.knee_run_id]
    if len(knee):
        fig.add_trace(go.Scatter(x=knee[p], y=knee[acc], mode="markers", name="knee",
                                 marker={"symbol": "star-open", "size": 20, "color": "crimson"}, hoverinfo="skip"))
    fig.update_layout(title=f"{acc} vs parameters", xaxis={"type": "log", "title": "parameters (log scale)"},
                      yaxis={"title": acc}, template="plotly_white", height=520)
    return fig


def hypervolume_plotly(analysis: Analysis):
    import plotly.graph_objects as go

    if not analysis.hypervolume_curve or analysis.reference is None:
        return None
    x = list(range(1, len(analysis.hypervolume_curve) + 1))
    fig = go.Figure(go.Scatter(x=x, y=analysis.hypervolume_curve, mode="lines+markers", line_shape="hv",
                               name="hypervolume"))
    fig.update_layout(title="hypervolume vs trial count", xaxis={"title": "trials (in start order)"},
                      yaxis={"title": "hypervolume"}, template="plotly_white", height=420)
    return fig


def _spread_words(part: pd.DataFrame) -> str:
    """"over n seeds" when every cell differs only by the seed; otherwise say that networks were pooled."""
    if "spread over" in part.columns and (part["spread over"] != "seeds").any():
        return "pooled over different networks"
    return f"over {int(part['n'].min())}-{int(part['n'].max())} seeds" if part["n"].nunique() > 1 \
        else f"over {int(part['n'].iloc[0])} seeds"


def ablation_plotly(analysis: Analysis):
    import plotly.graph_objects as go

    table = analysis.ablation
    if table is None:
        return None
    fig = go.Figure()
    for i, start in enumerate(table["start"].unique()):
        part = table[table["start"] == start]
        fig.add_trace(go.Scatter(x=part[schema.FOLD_PARAM], y=part["mean"], mode="lines+markers", name=start,
                                 error_y={"type": "data", "array": part["std"].tolist(), "visible": True},
                                 line={"color": PALETTE[i % len(PALETTE)]},
                                 hovertext=[f"n={n}, min={lo:.4g}, max={hi:.4g}"
                                            for n, lo, hi in zip(part["n"], part["min"], part["max"])]))
    metric = table.attrs.get("metric", analysis.accuracy)
    fig.update_layout(title=f"fold ablation: {metric} (mean ± std, {_spread_words(table)})",
                      xaxis={"title": "fold", "dtick": 1}, yaxis={"title": metric},
                      template="plotly_white", height=420)
    return fig


def interactive_html(figures: list[tuple[str, Any]], path: Path, title: str) -> Path:
    """One self-contained page: plotly.js inlined once, then every figure's div."""
    from plotly.offline import get_plotlyjs

    divs = "\n".join(f"<h2>{html.escape(name)}</h2>\n" + fig.to_html(full_html=False, include_plotlyjs=False)
                     for name, fig in figures)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
            f"<script type='text/javascript'>{get_plotlyjs()}</script>\n"
            "<style>body{font-family:system-ui,sans-serif;margin:2em;}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{divs}\n</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path


def write_plots(analysis: Analysis, out_dir: Path, title: str) -> dict[str, Path]:
    """Write every figure that the data supports; returns name -> path."""
    files: dict[str, Path] = {}
    for name, draw in (("pareto_png", pareto_png), ("hypervolume_png", hypervolume_png),
                       ("fold_ablation_png", ablation_png)):
        out = draw(analysis, out_dir / f"{name.removesuffix('_png')}.png")
        if out is not None:
            files[name] = out
    figures = [(name, fig) for name, fig in (("accuracy vs parameters", pareto_plotly(analysis)),
                                             ("hypervolume vs trial count", hypervolume_plotly(analysis)),
                                             ("fold ablation", ablation_plotly(analysis))) if fig is not None]
    if figures:
        files["plots_html"] = interactive_html(figures, out_dir / "plots.html", title)
    return files

