"""Bound expressions: how one field's range refers to another field's value.

Dependent bounds are the point of a *constrained* space: ``start_id`` runs from ``fold`` to the
last node, ``end_id`` from ``start_id + 1`` to the last node. A bound is therefore either a
number or a tiny linear expression over names, e.g. ``fold``, ``last_node - 1``,
``start_id + 1``, ``2 * fold``. The grammar is deliberately that small (sums of ``INT``,
``NAME`` and ``INT * NAME`` terms): it covers every dependency between ResNetX fields, it can
be evaluated without ``eval``, and interval arithmetic on it stays exact.

Names are field names. A bare name (``fold``) means a field of the same section; a dotted
name (``model.fold``) is absolute. The model section also offers two derived names:
``last_node`` (the number of units, ``sum(num_nodes)``) and ``stages`` (``len(num_nodes)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resnetx.errors import ConfigError

_TERM = re.compile(r"^(?:(?P<coef>\d+)\s*\*\s*)?(?P<atom>\d+|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)$")
_NUMBER = re.compile(r"^\d+$")

# Derived names offered in the model section, and the field each is computed from.
DERIVED: dict[str, str] = {"model.last_node": "model.num_nodes", "model.stages": "model.num_nodes"}


def derived_value(name: str, num_nodes: Any) -> int:
    """Value of a derived name from the resolved ``model.num_nodes``."""
    if name == "model.last_node":
        return int(sum(num_nodes))
    if name == "model.stages":
        return len(num_nodes)
    raise KeyError(name)


@dataclass(frozen=True)
class Expr:
    """A linear integer expression: ``constant + sum(coef * name)``."""

    text: str
    constant: int
    terms: tuple[tuple[int, str], ...]  # (signed coefficient, absolute name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.terms)

    def evaluate(self, values: Mapping[str, Any]) -> int:
        total = self.constant
        for coef, name in self.terms:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, value, f"is used in the bound '{self.text}' and must be an integer")
            total += coef * value
        return total

    def interval(self, bounds: Mapping[str, tuple[int, int]]) -> tuple[int, int]:
        """Smallest and largest value given an interval for every name (exact for linear terms)."""
        lo = hi = self.constant
        for coef, name in self.terms:
            a, b = bounds[name]
            lo += min(coef * a, coef * b)
            hi += max(coef * a, coef * b)
        return lo, hi


def parse_expr(text: str, path: str, section: str) -> Expr:
    """Parse ``text`` (a bound at ``path``) with bare names resolved in ``section``."""
    src = text.strip()
    if not src:
        raise ConfigError(path, text, "must be a number or an expression such as 'fold' or 'last_node - 1'")
    tokens = re.split(r"\s*([+-])\s*", src)
    if tokens[0] == "":  # leading sign
        tokens = ["0", *tokens[1:]]
    constant, terms = 0, []
    sign = 1
    for i, token in enumerate(tokens):
        if i % 2 == 1:
            sign = 1 if token == "+" else -1
            continue
        match = _TERM.match(token)
        if not match:
            raise ConfigError(path, text, "must be a sum of integers and field names, e.g. 'start_id + 1', "
                                          "'last_node - 1', '2 * fold'")
        coef = int(match.group("coef") or 1)
        atom = match.group("atom")
        if _NUMBER.match(atom):
            constant += sign * coef * int(atom)
        else:
            terms.append((sign * coef, atom if "." in atom else f"{section}.{atom}"))
    return Expr(text=src, constant=constant, terms=tuple(terms))
