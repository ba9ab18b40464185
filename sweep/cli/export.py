"""Write chosen configs of a sweep as YAML files with provenance.

Choose with --front (every Pareto-front config), --top K --by METRIC[:max|min], and/or
--max-params P (alone: the most accurate network with at most P parameters; with --front or
--top: a filter). One file per distinct config; each holds the trained experiment config
(model, data, train) plus a provenance section. `resnetx show FILE` rebuilds the model,
`resnetx train FILE` retrains it. Nothing is written unless every chosen config is valid.
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


def validate_experiment(config: dict) -> None:
    """The same validation ``resnetx train`` applies (ExperimentConfig ignores ``provenance``)."""
    from sweep.config.experiment import ExperimentConfig

    ExperimentConfig(**config)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from reports.export import Selection, export_configs
    from reports.render import fmt
    from sweep.cli.report import tracking_uri_of

    if args.by is not None and args.top is None:
        raise ConfigError("--by", args.by, "only applies with --top K")
    if args.max_params is not None and not args.max_params > 0:
        raise ConfigError("--max-params", args.max_params, "must be > 0")
    selection = Selection(front=args.front, top=args.top, by=args.by, max_params=args.max_params)
    uri = tracking_uri_of(args)  # also fills the --experiment default
    exported = export_configs(uri, args.experiment, args.out, selection, sweep_run_id=args.sweep,
                              objectives=args.objectives, validate=validate_experiment)
    table = Table(title=f"exported {len(exported)} config(s): {selection.describe()}")
    for column in ("file", "run", "config hash", "val_acc", "params"):
        table.add_column(column)
    for item in exported:
        table.add_row(str(item.path), item.run_name or item.run_id, item.config_hash or "",
                      fmt(item.metrics.get("val_acc")), fmt(item.metrics.get("params"), "params"))
    Console().print(table)
    return 0
