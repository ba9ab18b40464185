"""One-line, user-facing configuration errors.

Every config object in the project is validated at construction. pydantic's own
``ValidationError`` is multi-line and names internal types, which is not what a user who
typed ``--set model.fold=0`` should read; :func:`one_line` turns it into
``model.fold: got 0; must be >= 1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration value is not allowed. The message is one line: field, value, allowed."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: got {value!r}; {allowed}")


def known(field: str, value: Any, registry: Iterable[Any]) -> Any:
    """``value`` when it names an entry of ``registry`` (a tuple, a dict of entries); else the
    one-line :class:`ConfigError` that names the field, the value and every allowed name.

    The one rule behind every "must be one of" of the project's registries (units, stems,
    datasets, loaders, trainables, ...), so that each says it the same way.
    """
    names = list(registry)
    if value not in names:
        raise ConfigError(field, value, f"must be one of {', '.join(str(n) for n in names)}")
    return value


def _loc(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts) or "<config>"


def _allowed(err: dict[str, Any]) -> str:
    kind, msg = err.get("type", ""), str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    msg = msg.removeprefix("Value error, ")
    msg = msg.replace("Input should be", "must be")
    return msg[:1].lower() + msg[1:] if msg else kind


def one_line(exc: ValidationError, prefix: str = "") -> ConfigError:
    """Convert the first error of a pydantic ``ValidationError`` into a :class:`ConfigError`."""
    err = exc.errors(include_url=False)[0]
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, ConfigError):
        field = f"{prefix}.{ctx_err.field}" if prefix and ctx_err.field else ctx_err.field
        return ConfigError(field or prefix or "<config>", ctx_err.value, ctx_err.allowed)
    value = err.get("input")
    if err.get("type") == "missing":
        value = None
    return ConfigError(_loc(prefix, tuple(err.get("loc", ()))), value, _allowed(dict(err)))
