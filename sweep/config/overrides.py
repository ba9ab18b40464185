"""Three-level configuration merge, as the seed's ``resnetx(default_cfg, cfg_file, cfg_list)``:
built-in defaults < a YAML file < ``--set key=value`` overrides.

Values after ``=`` are parsed as YAML (``--set model.num_nodes=[2,2,2]``,
``--set train.lr=0.1``, ``--set model.first_downsample=true``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from resnetx.errors import ConfigError


def read_yaml_file(path: str | Path, field: str = "config") -> dict[str, Any]:
    """Read a YAML mapping from a file; any problem is a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(field, str(path), "file not found")
    if p.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise ConfigError(field, str(path), "must be a .yaml, .yml or .json file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(field, str(path), f"is not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise ConfigError(field, str(path), "is not a text file") from None
    if not isinstance(data, dict):
        raise ConfigError(field, str(path), "must contain a mapping of key: value")
    return data


def parse_set(item: str) -> tuple[list[str], Any]:
    """``model.fold=3`` -> (["model", "fold"], 3)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", item, "must look like key=value (e.g. model.fold=3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return [part for part in key.strip().split(".") if part], yaml11_number(value)


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def yaml11_number(value: Any) -> Any:
    """The number a numeric string means; any other value unchanged. The one place for this rule.

    YAML 1.1 (PyYAML) reads ``1e-3`` (no dot) as a string, and that is how people write learning
    rates in YAML files and ``--set``: both the ``--set`` parser and the config validators use this.
    """
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overlay`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_sets(data: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides, creating nested mappings as needed."""
    out = copy.deepcopy(dict(data))
    for item in sets:
        path, value = parse_set(item)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError("--set", item, f"'{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"fold": 2}}`` -> ``{"model.fold": 2}``; lists stay values (MLflow params, exports)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
