"""List the built-in search spaces, or describe one: fields, ranges, size and samples.

  resnetx spaces list                      every built-in space, its kind and size
  resnetx spaces show quick                fields, budget, distinct networks, 5 samples
  resnetx spaces show my-space.yaml --samples 10 --seed 3
  resnetx spaces show fold-ablation --json

Sizes count distinct networks after de-duplication by canonical hash (configs that build the
same network count once). Space files are YAML; see docs/search_spaces.md for the format.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="spaces_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", help="list the built-in spaces")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = sub.add_parser("show", help="describe one space (built-in name or YAML file)")
    show.add_argument("space", metavar="NAME|FILE", help="built-in space name or path to a space YAML file")
    show.add_argument("--samples", type=int, default=5, metavar="N", help="how many samples to show (default 5)")
    show.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _size_text(count: int | None) -> str:
    return "infinite or too large to enumerate" if count is None else f"{count:,}"


def summary(space: Any) -> dict[str, Any]:
    """What ``spaces list`` shows for one space."""
    searched = [f.name for f in space.fields if f.kind != "constant"]
    return {
        "name": space.name,
        "search": "grid" if space.is_grid else "random/optuna",
        "grid_points": len(space.grid()) if space.is_grid else None,
        "distinct_networks": space.count_distinct(),
        "searched_fields": len(searched),
        "max_params": space.max_params,
        "max_flops": space.max_flops,
        "description": space.description,
    }


def describe(space: Any, samples: int, seed: int) -> dict[str, Any]:
    """What ``spaces show`` prints: fields, budget, sizes and a few samples with their costs."""
    import random

    from resnetx.errors import ConfigError

    if samples < 0:
        raise ConfigError("--samples", samples, "must be >= 0")
    if space.is_grid:
        grid = space.grid()
        from sweep.config.experiment import trial_key

        points, keys = grid[:samples], {trial_key(p, space.seed_is_axis) for p in grid}
    else:
        rng = random.Random(seed)
        points, keys = [space.sample(rng) for _ in range(samples)], None
    varying = [f.name for f in space.fields if f.kind != "constant"]
    rows = []
    for point in points:
        cost = space.cost(point)
        flat = {name: point[name.split(".", 1)[0]][name.split(".", 1)[1]] for name in varying}
        rows.append({"params": cost.params, "flops": cost.flops, "values": flat,
                     "model_hash": _model_hash(point), "config": point})
    return {
        **summary(space),
        "source": space.source,
        "objectives": space.objectives,
        "input_size": list(space.input_size),
        "distinct_trials": None if keys is None else len(keys),
        "fields": [{"field": f.name, "kind": f.kind, "values": f.describe()} for f in space.fields],
        "samples": rows,
    }


def _model_hash(point: dict[str, Any]) -> str:
    from resnetx import ResNetXConfig

    return ResNetXConfig(**point["model"]).canonical_hash()


def _print_list(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Built-in search spaces")
    for column in ("name", "search", "distinct networks", "budget", "description"):
        table.add_column(column, justify="right" if column == "distinct networks" else "left",
                         no_wrap=column != "description")
    for row in rows:
        search = f"grid ({row['grid_points']} points)" if row["search"] == "grid" else row["search"]
        table.add_row(escape(row["name"]), search, _size_text(row["distinct_networks"]), _budget_text(row),
                      escape(row["description"]))
    Console().print(table)


def _budget_text(row: dict[str, Any]) -> str:
    parts = []
    if row["max_params"]:
        parts.append(f"params <= {row['max_params']:,}")
    if row["max_flops"]:
        parts.append(f"FLOPs <= {row['max_flops']:,}")
    return ", ".join(parts) or "-"


def _print_show(info: dict[str, Any], seed: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(info['name'])}[/bold] ({escape(info['source'])}): {escape(info['description'])}")
    size = "x".join(map(str, info["input_size"]))
    console.print(f"objectives: {', '.join(info['objectives']) or '-'}   budget: {_budget_text(info)} "
                  f"(FLOPs forward, 2 per multiply-add, at {size})")
    fields = Table(title="Fields (in draw order)")
    for column in ("field", "kind", "values"):
        fields.add_column(column)
    for row in info["fields"]:
        fields.add_row(row["field"], row["kind"], escape(row["values"]),
                       style=None if row["kind"] == "constant" else "bold")
    console.print(fields)
    line = f"distinct networks (after de-duplication by canonical hash): {_size_text(info['distinct_networks'])}"
    if info["grid_points"] is not None:
        line += f"; grid points: {info['grid_points']:,}; distinct trials: {info['distinct_trials']:,}"
    console.print(line)
    if not info["samples"]:
        return
    what = "first grid points" if info["grid_points"] is not None else f"samples (seed {seed})"
    table = Table(title=f"{len(info['samples'])} {what}")
    names = list(info["samples"][0]["values"])
    for column in ("#", "params", "FLOPs", "model hash", *names):
        numeric = column in ("#", "params", "FLOPs")
        table.add_column(column.removeprefix("model."), justify="right" if numeric else "left")
    for i, row in enumerate(info["samples"], 1):
        values = [escape(_cell(row["values"][n])) for n in names]
        table.add_row(str(i), f"{row['params']:,}", f"{row['flops']:,}", row["model_hash"], *values)
    console.print(table)


def _cell(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def run(args: argparse.Namespace) -> int:
    import json

    from search_spaces import builtin_spaces, load_space

    if args.spaces_command == "list":
        rows = [summary(load_space(name)) for name in builtin_spaces()]
        if args.json:
            print(json.dumps(rows))
        else:
            _print_list(rows)
        return 0
    space = load_space(args.space)
    info = describe(space, args.samples, args.seed)
    if args.json:
        print(json.dumps(info))
    else:
        _print_show(info, args.seed)
    return 0
