"""What ``resnetx sweep`` prints when it ends: counts, the Pareto front, where things are."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reports.schema import shown_uri
from sweep.tune.runner import SweepOutcome


def print_summary(outcome: SweepOutcome, console: Console) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in outcome.statuses.items()) or "no trials"
    console.print(f"sweep ended in {outcome.elapsed_s:.0f} s: {counts}")
    if outcome.interrupted:
        console.print(f"interrupted: continue with  resnetx sweep --resume --experiment {outcome.experiment}")
    report = outcome.report
    if report is not None:
        front = getattr(report, "front", None)
        if front is not None and len(front):
            table = Table(title="Pareto front")
            columns = [c for c in ("trial_id", "val_acc", "params", "flops", "model.unit", "model.fold",
                                   "model.num_nodes", "model.base") if c in front.columns]
            for column in columns:
                table.add_column(column)
            for _, row in front.iterrows():
                table.add_row(*(_fmt(row[c]) for c in columns))
            console.print(table)
        files = report.files
        if "index_html" in files:
            console.print(f"report: {files['index_html']} (also report.md, pareto.csv and plots in {report.out_dir})")
    console.print(f"MLflow: {shown_uri(outcome.tracking_uri)} (experiment {outcome.experiment}, sweep run "
                  f"{outcome.parent_run_id}); browse with  resnetx ui")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
