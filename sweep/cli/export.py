"""Write chosen configs of a sweep as YAML files with provenance.

Choose with --front (every Pareto-front config), --top K --by METRIC[:max|min], and/or
--max-params P (alone: the most accurate network with at most P parameters; with --front or
--top: a filter). One file per distinct config; each holds the trained experiment config
(model, data, train) plus a provenance section. `resnetx show FILE` rebuilds the model,
`resnetx train FILE` retrains it. Nothing is written unless every chosen config is valid.

--with-weights also writes each chosen trial's trained weights (its last checkpoint kept by
Tune) next to its YAML as FILE.pt, a plain state dict, with its SHA-256 in the provenance;
`resnetx.build_model(FILE.yaml, weights=FILE.pt)` returns the trained network. A trial whose
checkpoint was deleted is exported without weights, and one line says so.

Without --sweep the sweep is the one `reports.runs.read_sweep_runs` takes; the first line printed
(`SweepRuns.describe()`) names it (run name and id), so an export never silently comes from
another sweep than the user meant.
"""

from __future__ import annotations

import argparse

from resnetx.errors import ConfigError
from sweep.cli.report import add_store_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_arguments(parser)
    pick = parser.add_mutually_exclusive_group()
    pick.add_argument("--front", action="store_true", help="every config on the Pareto front")
    pick.add_argument("--top", type=int, default=None, metavar="K", help="the K best configs by --by")
    parser.add_argument("--by", default=None, metavar="METRIC[:max|min]",
                        help="metric for --top, e.g. val_acc or latency_ms:min")
    parser.add_argument("--max-params", type=float, default=None, metavar="P",
                        help="only configs with at most P parameters (alone: the best one under P)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the YAML files")
    parser.add_argument("--with-weights", action="store_true",
                        help="also write each trial's trained weights (FILE.pt, from its last Tune checkpoint)")


def validate_experiment(config: dict) -> None:
    """The same validation ``resnetx train`` applies (ExperimentConfig ignores ``provenance``)."""
    from sweep.config.experiment import ExperimentConfig

    ExperimentConfig(**config)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from reports.export import Selection, export_configs
    from reports.render import fmt
    from reports.runs import read_sweep_runs
    from sweep.cli.report import tracking_uri_of

    if args.by is not None and args.top is None:
        raise ConfigError("--by", args.by, "only applies with --top K")
    if args.max_params is not None and not args.max_params > 0:
        raise ConfigError("--max-params", args.max_params, "must be > 0")
    selection = Selection(front=args.front, top=args.top, by=args.by, max_params=args.max_params)
    uri = tracking_uri_of(args)  # also fills the --experiment default
    sweep = read_sweep_runs(uri, args.experiment, args.sweep)
    console = Console()
    console.print(f"exporting from {sweep.describe()}", soft_wrap=True, highlight=False, markup=False)
    exported = export_configs(uri, args.experiment, args.out, selection, sweep_run_id=args.sweep,
                              objectives=args.objectives, validate=validate_experiment,
                              with_weights=args.with_weights, sweep=sweep)
    table = Table(title=f"exported {len(exported)} config(s): {selection.describe()}")
    columns = ["file", "run", "config hash", "val_acc", "params"] + (["weights"] if args.with_weights else [])
    for column in columns:
        table.add_column(column)
    for item in exported:
        cells = [str(item.path), item.run_name or item.run_id, item.config_hash or "",
                 fmt(item.metrics.get("val_acc")), fmt(item.metrics.get("params"), "params")]
        if args.with_weights:
            cells.append(item.weights.name if item.weights is not None else "none")
        table.add_row(*cells)
    console.print(table)
    for item in exported:
        if item.weights_note:
            console.print(item.weights_note, soft_wrap=True, highlight=False, markup=False)
    return 0
