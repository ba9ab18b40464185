"""Text renderings of an analysis: ``report.md`` and a self-contained ``index.html``.

Pure string building (the caller writes the files). ``index.html`` embeds its PNGs as base64
data URIs and inlines its CSS, so the one file opens from disk, from an MLflow artifact view or
as an e-mail attachment; the interactive plots live in ``plots.html`` beside it.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports import schema
from reports.analysis import Analysis

SUMMARY_COLUMNS = ("run_name", "trial_id", schema.TAG_STATUS, "run_id")
PNG_TITLES = {"pareto_png": "Accuracy vs parameters", "hypervolume_png": "Hypervolume vs trial count",
              "fold_ablation_png": "Fold ablation"}


def fmt(value: Any, column: str = "") -> str:
    """Short human text for a table cell: 4 significant digits, parameter counts with separators."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if column in (schema.PARAMS_METRIC, "flops", "budget") or (value.is_integer() and abs(value) >= 1e4):
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if column in (schema.PARAMS_METRIC, "flops", "budget") else str(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def front_columns(analysis: Analysis) -> list[str]:
    names = [o.name for o in analysis.objectives]
    cols = ["run_name", "trial_id", *names, schema.PARAMS_METRIC, *analysis.varying, "run_id"]
    return [c for c in dict.fromkeys(cols) if c in analysis.front.columns]


def front_table(analysis: Analysis) -> pd.DataFrame:
    """The front with a ``knee`` marker column: what the CLI and both renderings show."""
    table = analysis.front[front_columns(analysis)].copy()
    table.insert(0, "knee", (analysis.front["run_id"] == analysis.knee_run_id).map({True: "*", False: ""}))
    return table


def status_counts(analysis: Analysis) -> dict[str, int]:
    statuses = pd.concat([analysis.ranked[schema.TAG_STATUS], analysis.failed[schema.TAG_STATUS]])
    return {str(k): int(v) for k, v in statuses.value_counts().sort_index().items()}


def knee_summary(analysis: Analysis) -> str:
    if analysis.knee_run_id is None:
        return "no front: no trial finished with all objectives measured."
    row = analysis.front[analysis.front["run_id"] == analysis.knee_run_id].iloc[0]
    values = ", ".join(f"{o.name} = {fmt(row[o.name], o.name)}" for o in analysis.objectives)
    config = ", ".join(f"{c} = {fmt(row[c])}" for c in analysis.varying if c in row.index and fmt(row[c]) != "")
    name = row.get("run_name") or row["run_id"]
    return f"{name} (run {row['run_id']}): {values}" + (f"; {config}" if config else "")


def hypervolume_summary(analysis: Analysis) -> str:
    if analysis.reference is None:
        return "not available (no ranked trial)."
    ref = ", ".join(f"{o.name} = {v:.6g}" for o, v in zip(analysis.objectives, analysis.reference))
    source = f"; reference {analysis.reference_source}" if analysis.reference_source else ""
    return (f"{analysis.hypervolume:.6g} (normalised: {analysis.hypervolume_normalised:.4f}) "
            f"with reference point ({ref}){source}")


def not_ranked(analysis: Analysis) -> pd.DataFrame:
    """Trials neither ranked nor listed as stopped early (failed, diverged, still running)."""
    failed = analysis.failed
    if analysis.at_epoch is None and len(failed):
        return failed[failed[schema.TAG_STATUS] != schema.STATUS_STOPPED]
    return failed


def ranking_note(analysis: Analysis) -> str:
    """Which trials the front compares, so a front never silently mixes training lengths."""
    if analysis.at_epoch is not None:
        return (f"Ranked at epoch {analysis.at_epoch}: every finished or stopped trial that reached it, by its "
                "metrics at that epoch.")
    return ("Ranked: trials trained to the end. Trials a scheduler stopped early are listed apart with the epoch "
            "they stopped at (rank them with the others at a common epoch: resnetx report --at-epoch common).")


def stopped_table(analysis: Analysis) -> pd.DataFrame:
    names = [o.name for o in analysis.objectives]
    cols = ["run_name", "trial_id", schema.EPOCHS_METRIC, *names, *analysis.varying, "run_id"]
    stopped = analysis.stopped
    return stopped[[c for c in dict.fromkeys(cols) if c in stopped.columns]] if len(stopped) else stopped


def ablation_note(table: pd.DataFrame) -> str:
    """What the ablation table's numbers are, so nobody reads pooled networks as seed noise."""
    metric = table.attrs.get("metric", "accuracy")
    pooled = sorted({s for s in table.get("spread over", pd.Series(dtype=str)) if s != "seeds"})
    spread = ("std over seeds: each cell's trials differ only by the seed" if not pooled
              else "cells pool different networks (" + "; ".join(pooled) + "): their spread is not seed noise")
    return (f"mean, std, min, max of {metric}; {spread}. diff vs fold 1 = mean difference to fold 1 with the "
            "same start, with a 95% Welch t confidence interval.")


# -- Markdown -------------------------------------------------------------------------------


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    cols = list(frame.columns)

    def cell(v: Any, c: str) -> str:
        return fmt(v, c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(row[c], c) for c in cols) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def mapping_table(data: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({"key": list(data), "value": [fmt(v) for v in data.values()]})


def render_markdown(analysis: Analysis, title: str, settings: Mapping[str, Any], provenance: Mapping[str, Any],
                    files: Mapping[str, Path]) -> str:
    parts = [f"# {title}\n",
             f"Objectives: `{','.join(str(o) for o in analysis.objectives)}`. "
             f"Trials by status: {', '.join(f'{k} {v}' for k, v in status_counts(analysis).items()) or 'none'}.\n",
             f"## Pareto front ({len(analysis.front)} trials)\n", ranking_note(analysis) + "\n\n",
             markdown_table(front_table(analysis)),
             f"\n**Knee point** (`*`): {knee_summary(analysis)}\n",
             f"\n**Hypervolume**: {hypervolume_summary(analysis)}\n"]
    for key, heading in PNG_TITLES.items():
        if key in files:
            parts.append(f"\n![{heading}]({files[key].name})\n")
    if "plots_html" in files:
        parts.append(f"\nInteractive plots: [{files['plots_html'].name}]({files['plots_html'].name})\n")
    for heading, note, table in later_sections(analysis, settings, provenance):
        parts += [f"\n## {heading}\n", f"{note}\n\n" if note else "", markdown_table(table)]
    return "".join(parts)


def later_sections(analysis: Analysis, settings: Mapping[str, Any],
                   provenance: Mapping[str, Any]) -> list[tuple[str, str, pd.DataFrame]]:
    """(heading, note, table) of every section after the front and the plots, in order: one list that
    both renderers walk, so the Markdown and the HTML report cannot list different sections."""
    sections = [("Best network under each parameter budget", "", analysis.budgets)]
    if analysis.ablation is not None:
        sections.append(("Fold ablation", ablation_note(analysis.ablation), analysis.ablation))
    if len(analysis.stopped) and analysis.at_epoch is None:
        sections.append(("Stopped early (not ranked: fewer epochs)", "", stopped_table(analysis)))
    others = not_ranked(analysis)
    shown = others[[c for c in SUMMARY_COLUMNS if c in others.columns]]
    sections += [("Trials that cannot be on the front", "", shown),
                 ("Sweep settings", "", mapping_table(settings)), ("Provenance", "", mapping_table(provenance))]
    return sections


# -- HTML -----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
tr.knee td{background:#fff3e0;font-weight:600} img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:1px 4px}
"""


def html_table(frame: pd.DataFrame, highlight_run: str | None = None) -> str:
    if frame.empty:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cls = " class='knee'" if highlight_run and row.get("run_id") == highlight_run else ""
        cells = "".join(f"<td>{html.escape(fmt(row[c], c))}</td>" for c in frame.columns)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(analysis: Analysis, title: str, settings: Mapping[str, Any], provenance: Mapping[str, Any],
                files: Mapping[str, Path], links: Sequence[str] = ()) -> str:
    e = html.escape
    counts = ", ".join(f"{k} {v}" for k, v in status_counts(analysis).items()) or "none"
    body = [f"<h1>{e(title)}</h1>",
            f"<p>Objectives: <code>{e(','.join(str(o) for o in analysis.objectives))}</code>. "
            f"Trials by status: {e(counts)}.</p>",
            f"<h2>Pareto front ({len(analysis.front)} trials)</h2>", f"<p>{e(ranking_note(analysis))}</p>",
            html_table(front_table(analysis), analysis.knee_run_id),
            f"<p><b>Knee point</b> (highlighted): {e(knee_summary(analysis))}</p>",
            f"<p><b>Hypervolume</b>: {e(hypervolume_summary(analysis))}</p>"]
    for key, heading in PNG_TITLES.items():
        if key in files:
            body.append(f"<h2>{e(heading)}</h2><img alt='{e(heading)}' src='{png_data_uri(files[key])}'>")
    for heading, note, table in later_sections(analysis, settings, provenance):
        body += [f"<h2>{e(heading)}</h2>", f"<p>{e(note)}</p>" if note else "", html_table(table)]
    if links:
        body.append("<p>Files beside this page: " + " · ".join(f"<a href='{e(n)}'>{e(n)}</a>" for n in links) + "</p>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")

