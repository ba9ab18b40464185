"""Pareto report of a sweep from its MLflow runs: CSV, plots, index.html, report.md.

Reads the latest sweep of the experiment that has trials (or --sweep RUN_ID; newer sweeps
without a trial, e.g. one that could not start, are passed over and named), says which sweep
it took, ranks the trials on the objectives (default: the sweep's own, else
val_acc:max,params:min), tags the child runs with pareto_rank / on_front and logs the report
under report/ on the sweep's run.
Default output folder: <runs dir>/reports/<sweep run id>.
"""

from __future__ import annotations

import argparse

from resnetx.errors import ConfigError


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs-dir / --tracking-uri / --experiment / --sweep / --objectives, shared by report and export."""
    add_store_location(parser)
    parser.add_argument("--sweep", default=None, metavar="RUN_ID",
                        help="the sweep's parent run id (default: the latest sweep that has trials)")
    parser.add_argument("--objectives", default=None, metavar="M:DIR,...",
                        help="e.g. val_acc:max,params:min (default: the sweep's objectives tag)")


def add_store_location(parser: argparse.ArgumentParser) -> None:
    """--runs-dir / --tracking-uri / --experiment: which MLflow store and experiment (report, export, record)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--runs-dir", default=None, metavar="DIR",
                       help="runs folder holding mlflow.db (default: $RESNETX_RUNS_DIR or ./resnetx-runs)")
    where.add_argument("--tracking-uri", default=None, metavar="URI",
                       help="MLflow tracking URI (instead of --runs-dir)")
    parser.add_argument("--experiment", default=None, metavar="NAME",
                        help="MLflow experiment (default: resnetx, sweep.config.paths.DEFAULT_EXPERIMENT)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    parser.add_argument("--budgets", default=None, metavar="P1,P2,...",
                        help="parameter budgets for 'best network under P' (default: 4, log-spaced over the trials)")
    parser.add_argument("--at-epoch", default=None, metavar="E",
                        help="rank finished and early-stopped trials together by their metrics at epoch E "
                             "(or 'common': the last epoch all reached); default: rank only finished trials")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: <runs dir>/reports/<sweep>)")
    parser.add_argument("--no-mlflow", action="store_true",
                        help="do not tag the runs or log the report to MLflow (read only)")


def parse_budgets(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise ConfigError("--budgets", text, "must be positive parameter counts, comma-separated (e.g. 1e5,1e6)")
    return values


def tracking_uri_of(args: argparse.Namespace) -> str:
    """Resolve --runs-dir / --tracking-uri (and fill the --experiment default, which lives in sweep.config.paths)."""
    from sweep.config.paths import DEFAULT_EXPERIMENT, resolve_tracking_uri

    args.experiment = args.experiment or DEFAULT_EXPERIMENT
    return resolve_tracking_uri(args.tracking_uri, args.runs_dir)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from reports.render import fmt, front_table, hypervolume_summary, knee_summary
    from reports.report import build_report
    from sweep.config.paths import runs_dir

    budgets = parse_budgets(args.budgets)
    uri = tracking_uri_of(args)
    root = None if uri.startswith("sqlite:///") else runs_dir(args.runs_dir) / "reports"
    result = build_report(uri, args.experiment, args.out, objectives=args.objectives, sweep_run_id=args.sweep,
                          budgets=budgets, log_to_mlflow=not args.no_mlflow, reports_root=root,
                          at_epoch=args.at_epoch)
    analysis = result.analysis
    console = Console()
    console.print(f"report of {result.sweep.describe()}", soft_wrap=True, highlight=False, markup=False)
    table = Table(title=f"Pareto front ({', '.join(str(o) for o in analysis.objectives)})")
    front = front_table(analysis).drop(columns=["trial_id", "train.seed"], errors="ignore")  # narrow terminals
    front["run_id"] = front["run_id"].str[:8]  # the full ids are in pareto.csv
    for column in front.columns:
        table.add_column(column, overflow="fold",
                         justify="left" if column in ("run_name", "run_id", "knee") else "right")
    for _, row in front.iterrows():
        table.add_row(*(fmt(row[c], c) for c in front.columns))
    console.print(table)
    console.print(f"knee point: {knee_summary(analysis)}")
    console.print(f"hypervolume: {hypervolume_summary(analysis)}")
    console.print(f"trials: {len(analysis.ranked)} rankable, {len(analysis.failed)} other "
                  f"(see {result.files['failed_csv']})")
    for name, path in result.files.items():
        console.print(f"{name}: {path}", soft_wrap=True)
    if result.logged_to:
        console.print(f"logged to MLflow run {result.logged_to} under report/; "
                      f"{result.tagged_runs} runs re-tagged (filter: tags.on_front = \"true\")", soft_wrap=True)
    return 0
