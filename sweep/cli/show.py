"""Build a config and print its wiring plan, parameter count and FLOPs.

CONFIG is a built-in name (resnet18 ... resnet152, resnet50-fold3, tiny, seed-mbconv, ...)
or a YAML file holding a model config (or an exported config with a `model:` section).
Overrides: --set model.fold=3 --set model.start_id=5 (or fold=3).
For a file exported with --with-weights, also says whether its trained weights are beside it
and match the checksum in its provenance.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnetx.errors import ConfigError

if TYPE_CHECKING:
    from resnetx import ResNetXConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="built-in name or YAML file")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field (repeatable), e.g. model.fold=3")
    parser.add_argument("--input-size", default=None, metavar="C,H,W",
                        help="input size for FLOPs (default: 3,224,224; 3,32,32 for the cifar stem)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")


def is_file_spec(spec: str) -> bool:
    return Path(spec).suffix.lower() in {".yaml", ".yml", ".json", ".py"} or Path(spec).exists()


def load_model_config(spec: str, sets: list[str]) -> tuple[ResNetXConfig, int | None]:
    """The network ``show`` describes, and the image side it trains at (None: not known).

    Built-in defaults < YAML file < --set overrides, validated once. An experiment file (one
    with a ``data:`` section: what ``resnetx train`` reads and ``resnetx export`` writes) goes
    through :func:`sweep.config.experiment.load_experiment`, so its dataset fills
    ``in_channels``/``num_classes`` exactly as for training and the network shown is the one
    that trains. A built-in name or a file of model fields alone has no dataset to fill from:
    it is shown as written.
    """
    from resnetx import ResNetXConfig, builtin_config
    from resnetx.config import canonical_keys
    from sweep.config.experiment import load_experiment
    from sweep.config.overrides import apply_sets, read_yaml_file

    model_sets = [_model_set(s) for s in sets]
    if is_file_spec(spec):
        document: dict[str, Any] = read_yaml_file(spec)
        if "data" in document:
            experiment = load_experiment(spec, model_sets)
            return experiment.model, experiment.data.effective_image_size
        data = dict(document["model"]) if isinstance(document.get("model"), dict) else document
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
    merged = apply_sets(data, model_sets)
    try:
        return ResNetXConfig(**merged), None
    except ConfigError as exc:
        raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None


def weights_beside(spec: str) -> dict[str, Any] | None:
    """The trained weights exported next to a YAML file, and whether they are the exported ones.

    ``resnetx export --with-weights`` names them in ``provenance.weights`` (file, sha256); a
    ``FILE.pt`` without that record is still reported, with no checksum to compare. None when
    ``spec`` is no file or has no weights beside it.
    """
    from resnetx.model import file_sha256
    from sweep.config.overrides import read_yaml_file

    if not is_file_spec(spec):
        return None
    provenance = read_yaml_file(spec).get("provenance")
    recorded = provenance.get("weights") if isinstance(provenance, dict) else None
    if isinstance(recorded, dict) and recorded.get("file"):
        path, expected = Path(spec).parent / str(recorded["file"]), recorded.get("sha256")
    elif Path(spec).with_suffix(".pt").is_file():
        path, expected = Path(spec).with_suffix(".pt"), None
    else:
        return None
    info: dict[str, Any] = {"file": str(path), "epoch": (recorded or {}).get("epoch"), "sha256": None}
    if not path.is_file():
        info["checksum"] = "missing"
        return info
    info["sha256"] = file_sha256(path)
    info["checksum"] = "not recorded" if not expected else "ok" if info["sha256"] == expected else "mismatch"
    return info


def _weights_line(info: dict[str, Any]) -> str:
    if info["checksum"] == "missing":
        return f"trained weights: {info['file']} is missing (named in the provenance)"
    if info["checksum"] == "mismatch":
        return (f"trained weights: {info['file']}: checksum MISMATCH (SHA-256 {info['sha256'][:16]}... is not "
                "the exported file's); build_model refuses it")
    epoch = f", epoch {info['epoch']}" if info.get("epoch") is not None else ""
    return f"trained weights: {info['file']} (checksum {info['checksum']}{epoch})"


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

    config, side = load_model_config(args.config, args.sets)
    size = parse_input_size(args.input_size, config, side)
    weights = weights_beside(args.config)
    model = build_model(config, device="meta")  # shapes only: instant, and no memory for huge widths
    params, flops = count_params(model), count_flops(model, size)
    rows = plan_rows(config)
    if args.json:
        shown = {"config": config.to_dict(), "config_hash": config.canonical_hash(),
                 "params": params, "flops": flops, "input_size": list(size), "plan": rows}
        if weights is not None:  # only for a file with weights beside it
            shown["weights"] = weights
        print(json.dumps(shown))
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
    if weights is not None:
        console.print(_weights_line(weights), soft_wrap=True, highlight=False, markup=False)
    return 0
