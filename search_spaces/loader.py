"""Finding and reading space files: built-in names or paths, with one-line errors.

Spaces are data. A space file is YAML (or JSON) read with ``yaml.safe_load``; a ``.py`` file is
refused rather than imported, so loading a space can never run code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from resnetx.errors import ConfigError
from search_spaces.schema import SpaceFile
from search_spaces.space import SearchSpace

SUFFIXES = (".yaml", ".yml", ".json")


def _builtin_dir() -> Any:
    return resources.files("search_spaces") / "builtin"


def builtin_spaces() -> list[str]:
    """Names of the built-in spaces (``search_spaces/builtin/*.yaml``)."""
    return sorted(p.name[: -len(".yaml")] for p in _builtin_dir().iterdir() if p.name.endswith(".yaml"))


def parse_space_text(text: str, source: str, default_name: str | None = None) -> SearchSpace:
    """A space from YAML text; ``source`` names it in errors about the file as a whole."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError("space", source, f"is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError("space", source, "must contain a mapping (name, model, data, train, ...)")
    _require_string_keys(data, "")
    if default_name and "name" not in data:
        data = {**data, "name": default_name}
    return SearchSpace(SpaceFile(**data), source=source)


def _require_string_keys(node: object, where: str) -> None:
    """YAML allows any key (``1: 2``, ``? [a]``); a space's keys are field names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(where or "space", key, "keys must be names (strings)")
            _require_string_keys(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _require_string_keys(item, f"{where}.{i}")


def load_space(name_or_path: str) -> SearchSpace:
    """A built-in space by name (``quick``) or a space file by path (``my-space.yaml``)."""
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix != "" or "/" in text or "\\" in text or path.exists()
    if not looks_like_path:
        if text not in builtin_spaces():
            raise ConfigError("space", text, f"unknown built-in space; known: {', '.join(builtin_spaces())} "
                                             "(or a path to a .yaml file)")
        return parse_space_text((_builtin_dir() / f"{text}.yaml").read_text(), f"builtin:{text}", text)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError("space", text, "must be a .yaml, .yml or .json file (spaces are data, never code)")
    if not path.is_file():
        raise ConfigError("space", text, "file not found")
    try:
        content = path.read_text()
    except (OSError, UnicodeDecodeError):
        raise ConfigError("space", text, "cannot be read as a text file") from None
    return parse_space_text(content, text, path.stem)
