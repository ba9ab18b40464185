"""Walking a space: one point by drawing each field in order, or every point by branching.

Both walks visit fields in dependency order and keep the derived names (``model.last_node``,
``model.stages``) up to date, so a bound like ``last_node - 1`` always sees the point's own
``num_nodes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from resnetx import ResNetXConfig
from resnetx.errors import ConfigError
from search_spaces.drawers import Drawer
from search_spaces.expressions import DERIVED, derived_value
from search_spaces.params import EmptyRange, Param

SECTION_NAMES = ("model", "data", "train")


def _set(values: dict[str, Any], name: str, value: Any) -> None:
    values[name] = value
    if name == "model.num_nodes":
        for derived in DERIVED:
            values[derived] = derived_value(derived, value)


def draw_point(fields: Sequence[Param], drawer: Drawer) -> dict[str, Any]:
    """Flat values of one point (``{"model.fold": 2, ...}``); raises EmptyRange on a dead end."""
    values: dict[str, Any] = {}
    for field in fields:
        _set(values, field.name, field.draw(values, drawer))
    return values


def all_points(fields: Sequence[Param]) -> Iterator[dict[str, Any]]:
    """Every point, first field outermost; branches whose dependent range is empty are skipped.

    Raises ``ValueError`` naming the first field whose values are continuous.
    """
    values: dict[str, Any] = {}
    names = [field.name for field in fields]

    def visit(i: int) -> Iterator[dict[str, Any]]:
        if i == len(fields):
            yield dict(values)
            return
        try:
            options = fields[i].options(values)
        except EmptyRange:
            return
        if options is None:
            raise ValueError(names[i])
        for option in options:
            _set(values, names[i], option)
            yield from visit(i + 1)

    yield from visit(0)


def nest(values: dict[str, Any], fields: Sequence[Param]) -> dict[str, dict[str, Any]]:
    """``{"model.fold": 2}`` -> ``{"model": {"fold": 2}, "data": {}, "train": {}}`` (fields only)."""
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTION_NAMES}
    for field in fields:
        section, key = field.name.split(".", 1)
        out[section][key] = values[field.name]
    return out


def build_model_config(model: dict[str, Any]) -> ResNetXConfig:
    """The sample's model part as a validated config; errors are located under ``model.``."""
    try:
        return ResNetXConfig(**model)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc.field}", exc.value, exc.allowed) from None
