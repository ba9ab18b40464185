"""Build a config and print its wiring plan, parameter count and FLOPs.

CONFIG is a built-in name (resnet18 ... resnet152, resnet50-fold3, tiny, seed-mbconv, ...)
or a YAML file holding a model config (or an exported config with a `model:` section).
Overrides: --set model.fold=3 --set model.start_id=5 (or fold=3).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from resnetx.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="built-in name or YAML file")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field (repeatable), e.g. model.fold=3")
    parser.add_argument("--input-size", default=None, metavar="C,H,W",
                        help="input size for FLOPs (default: 3,224,224; 3,32,32 for the cifar stem)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")


def load_model_config(spec: str, sets: list[str]):
    """Built-in defaults < YAML file < --set overrides, validated once."""
    from resnetx import ResNetXConfig, builtin_config
    from resnetx.config import canonical_keys
    from sweep.config.overrides import apply_sets, read_yaml_file

    if Path(spec).suffix.lower() in {".yaml", ".yml", ".json", ".py"} or Path(spec).exists():
        document: dict[str, Any] = read_yaml_file(spec)
        data = dict(document["model"]) if isinstance(document.get("model"), dict) else document
        data = {**_dataset_fields(document.get("data")), **data}
        try:
            data = canonical_keys(data)
        except ConfigError as exc:
            raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None
    else:
        try:
            data = builtin_config(spec).to_dict()
        except ConfigError as exc:  # e.g. resnet50-fold0: a field of the model config is wrong
            field = exc.field if exc.field == "model" else f"model.{exc.field}"
            raise ConfigError(field, exc.value, exc.allowed) from None
    merged = apply_sets(data, [_model_set(s) for s in sets])
    try:
        return ResNetXConfig(**merged)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None


def _dataset_fields(section: Any) -> dict[str, Any]:
    """An experiment file's dataset decides the input channels and classes its model leaves unset."""
    from sweep.config.datasets import DATASETS

    if not isinstance(section, dict) or section.get("name", "digits") not in DATASETS:
        return {}
    spec = DATASETS[section.get("name", "digits")]
    fields: dict[str, Any] = {"in_channels": spec.in_channels}
    if spec.num_classes is not None:
        fields["num_classes"] = spec.num_classes
    return fields


def dataset_input_size(spec: str) -> int | None:
    """The image side an experiment file trains at (its data section), for the FLOPs shown."""
    from sweep.config.datasets import DATASETS
    from sweep.config.overrides import read_yaml_file

    if not Path(spec).is_file():
        return None
    section = read_yaml_file(spec).get("data")
    if not isinstance(section, dict) or section.get("name", "digits") not in DATASETS:
        return None
    return section.get("image_size") or DATASETS[section.get("name", "digits")].image_size


def _model_set(item: str) -> str:
    """``model.c_out=10`` -> ``num_classes=10``: overrides replace a field whichever name they use."""
    from resnetx.config import FIELD_ALIASES

    key, sep, value = item.partition("=")
    if not sep:
        return item  # apply_sets reports the malformed item as typed
    key = key.strip().removeprefix("model.")
    return f"{FIELD_ALIASES.get(key, key)}{sep}{value}"


def parse_input_size(text: str | None, config, side: int | None = None) -> tuple[int, int, int]:
    if text is None:
        side = side or (32 if config.stem == "cifar" else 224)
        return (config.in_channels, side, side)
    try:
        size = tuple(int(v) for v in text.split(","))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise ConfigError("--input-size", text, "must be three positive integers C,H,W")
    return size  # type: ignore[return-value]


def plan_rows(config) -> list[dict[str, Any]]:
    """One row per node: what ``resnetx show`` prints."""
    rows = []
    for n in config.plan().nodes:
        shortcut = "identity"
        if n.projects:
            shortcut = f"{config.shortcut} {n.shortcut_in_channels}->{n.out_channels} /{n.shortcut_stride}"
        rows.append({"node": n.index, "stage": n.stage + 1, "pred": n.pred, "skip": n.skip,
                     "in": n.in_channels, "hidden": n.hidden_channels, "out": n.out_channels,
                     "stride": n.stride, "shortcut": shortcut})
    return rows


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from resnetx import build_model, count_flops, count_params

    config = load_model_config(args.config, args.sets)
    size = parse_input_size(args.input_size, config, dataset_input_size(args.config))
    model = build_model(config, device="meta")  # shapes only: instant, and no memory for huge widths
    params, flops = count_params(model), count_flops(model, size)
    rows = plan_rows(config)
    if args.json:
        print(json.dumps({"config": config.to_dict(), "config_hash": config.canonical_hash(),
                          "params": params, "flops": flops, "input_size": list(size), "plan": rows}))
        return 0
    console = Console()
    table = Table(title=f"ResNetX wiring plan ({args.config})", show_lines=False)
    for column in rows[0]:
        table.add_column(column, justify="right" if column != "shortcut" else "left")
    for row in rows:
        style = "bold" if row["skip"] > 1 else None
        table.add_row(*(str(v) for v in row.values()), style=style)
    console.print(table)
    projections = sum(1 for n in config.plan().nodes if n.projects)
    console.print(f"unit={config.unit} stem={config.stem} shortcut={config.shortcut} fold={config.fold} "
                  f"start_id={config.effective_start_id} end_id={config.effective_end_id} "
                  f"nodes={config.total_nodes} projections={projections}")
    console.print(f"config hash: {config.canonical_hash()}")
    console.print(f"parameters: {params:,}")
    console.print(f"FLOPs (forward, 2 per multiply-add) at {'x'.join(map(str, size))}: {flops:,} "
                  f"({flops / 2e9:.3f} GMACs)")
    return 0
