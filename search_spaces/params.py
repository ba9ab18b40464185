"""Parameter kinds: what one field of a search space may be, as written in YAML.

Each kind is identified by one key of its YAML mapping (:data:`KINDS`, an explicit registry);
a plain value is a constant. Every kind is a validated, frozen config object whose errors
name their path (``model.fold.high: got 1; must be >= low (2)``), and every kind answers the
same few questions: which fields it depends on, how to draw a value given the values drawn so
far (through a :class:`~search_spaces.drawers.Drawer`), which values it can take (for grids
and exact counting), and how to describe itself.

    fold:      {low: 1, high: 4}                       # int range (both bounds integers)
    lr:        {low: 0.01, high: 0.3, log: true}       # float range, log-uniform
    unit:      {choice: [basic, bottleneck]}           # random choice
    fold:      {grid: [1, 2, 3, 4]}                    # grid axis (every value is tried)
    start_id:  {low: fold, high: last_node - 1}        # dependent bounds
    end_id:    {expr: last_node}                       # derived value
    num_nodes: {split: {low: 6, high: 12}, stages: 3}  # total depth split across stages
    lr:        {match: train.weights, cases: [{when: null, value: 0.1}], default: 0.01}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import PrivateAttr, StrictBool, StrictFloat, StrictInt, field_validator, model_validator

from resnetx.config import StrictConfig
from resnetx.errors import ConfigError
from search_spaces.depth import all_splits, min_units_per_stage
from search_spaces.drawers import Drawer
from search_spaces.expressions import Expr, parse_expr

Values = Mapping[str, Any]
Bound = StrictInt | StrictFloat | str


class EmptyRange(ConfigError):
    """A dependent range is empty at this point (e.g. ``low: fold`` above ``high: last_node - 1``)."""


def _same(a: Any, b: Any) -> bool:
    """Equality as plain data (a YAML list equals a tuple of the same items)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(values: list[Any], limit: int = 8) -> str:
    text = [json.dumps(v) for v in values[:limit]]
    return "[" + ", ".join(text) + (", ..." if len(values) > limit else "") + "]"


class Param(StrictConfig):
    """Base of every kind. ``bind`` attaches the field's flat name and compiles its expressions."""

    kind: ClassVar[str] = ""
    is_random: ClassVar[bool] = False  # drawn at random (choice, range, split)
    is_grid: ClassVar[bool] = False  # an axis every value of which a grid visits
    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        return self._name

    def bind(self, name: str, section: str) -> Param:
        bound = self.model_copy()
        bound._name = name
        bound._compile(section)
        return bound

    def _compile(self, section: str) -> None:
        """Parse expressions; subclasses with bounds override."""

    def refs(self) -> tuple[str, ...]:
        return ()

    def draw(self, values: Values, drawer: Drawer) -> Any:
        raise NotImplementedError

    def options(self, values: Values) -> list[Any] | None:
        """Every value this field can take at this point; None when the set is continuous."""
        raise NotImplementedError

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        """Smallest and largest integer this field can take, if it is always an integer."""
        return None

    def describe(self) -> str:
        raise NotImplementedError


class Constant(Param):
    """A fixed value (``fold: 2``, or explicitly ``fold: {value: 2}``)."""

    kind: ClassVar[str] = "constant"
    value: Any

    def draw(self, values: Values, drawer: Drawer) -> Any:
        return self.value

    def options(self, values: Values) -> list[Any] | None:
        return [self.value]

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        return (self.value, self.value) if _is_int(self.value) else None

    def describe(self) -> str:
        return json.dumps(self.value)


class _Listed(Param):
    """Shared by choice and grid: a non-empty list of distinct values."""

    def _values(self) -> list[Any]:
        raise NotImplementedError

    def draw(self, values: Values, drawer: Drawer) -> Any:
        return drawer.categorical(self.name, self._values())

    def options(self, values: Values) -> list[Any] | None:
        return list(self._values())

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        vals = self._values()
        return (min(vals), max(vals)) if all(_is_int(v) for v in vals) else None

    def describe(self) -> str:
        return f"{self.kind} {_short(self._values())}"


def _check_listed(key: str, vals: list[Any]) -> None:
    if not vals:
        raise ConfigError(key, vals, "must list at least one value")
    for i, value in enumerate(vals):
        if any(_same(value, other) for other in vals[:i]):
            raise ConfigError(f"{key}.{i}", value, "is listed twice")


class Choice(_Listed):
    """One of the listed values, drawn at random (``unit: {choice: [basic, bottleneck]}``)."""

    kind: ClassVar[str] = "choice"
    is_random: ClassVar[bool] = True
    choice: list[Any]

    @model_validator(mode="after")
    def _check(self) -> Choice:
        _check_listed("choice", self.choice)
        return self

    def _values(self) -> list[Any]:
        return self.choice


class Grid(_Listed):
    """A grid axis: a grid search visits every value; random search draws one."""

    kind: ClassVar[str] = "grid"
    is_grid: ClassVar[bool] = True
    grid: list[Any]

    @model_validator(mode="after")
    def _check(self) -> Grid:
        _check_listed("grid", self.grid)
        return self

    def _values(self) -> list[Any]:
        return self.grid


def _compile_bound(bound: Any, path: str, section: str) -> Expr | int | float:
    return parse_expr(bound, path, section) if isinstance(bound, str) else bound


def _eval(bound: Expr | int | float, values: Values) -> int | float:
    return bound.evaluate(values) if isinstance(bound, Expr) else bound


def _context(bounds: tuple[Any, ...], values: Values) -> str:
    names = sorted({n for b in bounds if isinstance(b, Expr) for n in b.names})
    return ", ".join(f"{n}={values.get(n)!r}" for n in names)


class Range(Param):
    """A number between ``low`` and ``high`` (inclusive), uniform or log-uniform, optionally stepped.

    The type is ``int`` when both bounds are integers or expressions (set ``type: float`` to
    override), otherwise ``float``. Bounds may be expressions over other fields.
    """

    kind: ClassVar[str] = "range"
    is_random: ClassVar[bool] = True
    low: Bound
    high: Bound
    log: StrictBool = False
    step: StrictInt | StrictFloat | None = None
    type: Literal["int", "float"] | None = None
    _low: Any = PrivateAttr(default=None)
    _high: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Range:
        is_float = self.type == "float" or (
            self.type is None and any(isinstance(v, float) for v in (self.low, self.high, self.step)))
        object.__setattr__(self, "type", "float" if is_float else "int")
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if isinstance(value, float):
                    raise ConfigError(key, value, "must be an integer (this is an int range; "
                                                  "set type: float for a float range)")
        if self.step is not None and self.step <= 0:
            raise ConfigError("step", self.step, "must be > 0")
        if self.log and self.step not in (None, 1):
            raise ConfigError("step", self.step, "cannot be combined with log: true")
        literal = not isinstance(self.low, str) and not isinstance(self.high, str)
        if literal and self.high < self.low:
            raise ConfigError("high", self.high, f"must be >= low ({self.low})")
        if self.log and not isinstance(self.low, str) and self.low <= 0:
            raise ConfigError("low", self.low, "must be > 0 with log: true")
        return self

    def _compile(self, section: str) -> None:
        self._low = _compile_bound(self.low, f"{self.name}.low", section)
        self._high = _compile_bound(self.high, f"{self.name}.high", section)

    def refs(self) -> tuple[str, ...]:
        return tuple(n for b in (self._low, self._high) if isinstance(b, Expr) for n in b.names)

    def bounds(self, values: Values) -> tuple[int | float, int | float]:
        low, high = _eval(self._low, values), _eval(self._high, values)
        if high < low:
            where = _context((self._low, self._high), values)
            raise EmptyRange(self.name, [low, high], f"the range is empty here (low {low} > high {high}; {where})")
        if self.log and low <= 0:
            raise EmptyRange(f"{self.name}.low", low, "must be > 0 with log: true")
        return low, high

    def draw(self, values: Values, drawer: Drawer) -> Any:
        low, high = self.bounds(values)
        if self.type == "int":
            step = int(self.step or 1)
            return drawer.integer(self.name, int(low), int(high), step, self.log)
        return drawer.real(self.name, float(low), float(high), None if self.step is None else float(self.step),
                           self.log)

    def options(self, values: Values) -> list[Any] | None:
        low, high = self.bounds(values)
        if self.type == "int":
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        if self.step:
            count = math.floor((high - low) / self.step + 1e-9) + 1
            return [low + self.step * k for k in range(count)]
        return None

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        if self.type != "int":
            return None
        ends = []
        for bound, pick in ((self._low, 0), (self._high, 1)):
            if isinstance(bound, Expr):
                if any(n not in intervals for n in bound.names):
                    return None
                ends.append(bound.interval(intervals)[pick])
            else:
                ends.append(int(bound))
        return ends[0], ends[1]

    def describe(self) -> str:
        extra = (" log" if self.log else "") + (f" step {self.step}" if self.step else "")
        return f"{self.type} [{self.low}, {self.high}]{extra}"


class Derived(Param):
    """A value computed from other fields (``end_id: {expr: last_node}``, ``start_id: {expr: fold}``)."""

    kind: ClassVar[str] = "expr"
    expr: StrictInt | str
    _expr: Any = PrivateAttr(default=None)

    def _compile(self, section: str) -> None:
        self._expr = _compile_bound(self.expr, f"{self.name}.expr", section)

    def refs(self) -> tuple[str, ...]:
        return self._expr.names if isinstance(self._expr, Expr) else ()

    def draw(self, values: Values, drawer: Drawer) -> Any:
        return _eval(self._expr, values)

    def options(self, values: Values) -> list[Any] | None:
        return [_eval(self._expr, values)]

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        if not isinstance(self._expr, Expr):
            return (self._expr, self._expr)
        if any(n not in intervals for n in self._expr.names):
            return None
        return self._expr.interval(intervals)

    def describe(self) -> str:
        return f"= {self.expr}"


class Case(StrictConfig):
    when: Any
    value: Any


class Match(Param):
    """A value looked up from another field's value (``weights`` by backbone, ``lr`` by warm start)."""

    kind: ClassVar[str] = "match"
    match: str
    cases: list[Case] = PydanticField(min_length=1)
    default: Any = None
    _ref: str = PrivateAttr(default="")

    @field_validator("cases", mode="before")
    @classmethod
    def _cases(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        cases = []
        for i, raw in enumerate(value):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"cases.{i}", raw, "must be a mapping {when: ..., value: ...}")
            try:
                cases.append(Case(**raw))
            except ConfigError as exc:
                raise ConfigError(f"cases.{i}.{exc.field}", exc.value, exc.allowed) from None
        return cases

    @model_validator(mode="after")
    def _check(self) -> Match:
        for i, case in enumerate(self.cases):
            if any(_same(case.when, other.when) for other in self.cases[:i]):
                raise ConfigError(f"cases.{i}.when", case.when, "is listed twice")
        return self

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    def _compile(self, section: str) -> None:
        expr = parse_expr(self.match, f"{self.name}.match", section)
        if expr.constant or len(expr.terms) != 1 or expr.terms[0][0] != 1:
            raise ConfigError(f"{self.name}.match", self.match, "must be one field name, e.g. unit or train.weights")
        self._ref = expr.terms[0][1]

    def refs(self) -> tuple[str, ...]:
        return (self._ref,)

    def lookup(self, key: Any) -> Any:
        for case in self.cases:
            if _same(case.when, key):
                return case.value
        if self.has_default:
            return self.default
        raise ConfigError(self.name, key, f"no case matches {self._ref}={json.dumps(key)} and there is no default")

    def draw(self, values: Values, drawer: Drawer) -> Any:
        return self.lookup(values[self._ref])

    def options(self, values: Values) -> list[Any] | None:
        return [self.lookup(values[self._ref])]

    def int_interval(self, intervals: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
        vals = [c.value for c in self.cases] + ([self.default] if self.has_default else [])
        return (min(vals), max(vals)) if all(_is_int(v) for v in vals) else None

    def describe(self) -> str:
        cases = ", ".join(f"{json.dumps(c.when)}->{json.dumps(c.value)}" for c in self.cases)
        default = f", else {json.dumps(self.default)}" if self.has_default else ""
        return f"by {self.match}: {cases}{default}"


class Split(Param):
    """Total depth split across stages (``num_nodes`` only), as the seed's ``get_num_nodes``.

    ``split`` is the total number of units (a constant, a choice, or an int range); ``stages``
    the number of stages; every stage holds at least ``min_per_stage`` units: ``auto`` is the
    seed's ``max(1, 2 * (fold - 1))`` for the point's fold. An int range of totals starts at
    the smallest total that can hold that minimum.
    """

    kind: ClassVar[str] = "split"
    is_random: ClassVar[bool] = True
    split: Any
    stages: StrictInt = PydanticField(ge=1)
    min_per_stage: StrictInt | Literal["auto"] = "auto"
    _total: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Split:
        total = parse_param("split", self.split)
        if not isinstance(total, (Constant, Choice, Grid, Range)):
            raise ConfigError("split", self.split, "must be an integer, {choice: [...]} or {low: .., high: ..}")
        ints = total.options({}) if not isinstance(total, Range) else [total.low, total.high]
        if isinstance(total, Range) and total.type != "int":
            raise ConfigError("split", self.split, "must be a range of integers")
        if isinstance(total, Range) and total.step not in (None, 1):
            raise ConfigError("split.step", total.step, "is not supported for a depth split")
        for value in ints:
            if not isinstance(value, str) and (not _is_int(value) or value < 1):
                raise ConfigError("split", value, "must be a positive integer number of units")
        if isinstance(self.min_per_stage, int) and self.min_per_stage < 1:
            raise ConfigError("min_per_stage", self.min_per_stage, "must be >= 1 or auto")
        return self

    def _compile(self, section: str) -> None:
        self._total = parse_param(f"{self.name}.split", self.split).bind(f"{self.name}.total", section)

    @property
    def total(self) -> Param:
        return self._total

    def refs(self) -> tuple[str, ...]:
        fold = ("model.fold",) if self.min_per_stage == "auto" else ()
        return (*self._total.refs(), *fold)

    def minimum(self, values: Values) -> int:
        if self.min_per_stage == "auto":
            return min_units_per_stage(int(values.get("model.fold", 1)))
        return int(self.min_per_stage)

    def totals(self, values: Values) -> list[int]:
        """Feasible totals at this point (the others cannot hold the stages)."""
        need = self.stages * self.minimum(values)
        return [t for t in self._total.options(values) if t >= need]

    def draw(self, values: Values, drawer: Drawer) -> Any:
        minimum = self.minimum(values)
        need = self.stages * minimum
        if isinstance(self._total, Range):
            low, high = self._total.bounds(values)
            low = max(int(low), need)
            if low > high:
                raise EmptyRange(self.name, high, f"{high} units cannot hold {self.stages} stages of >= {minimum}")
            total = drawer.integer(self._total.name, low, int(high), 1, self._total.log)
        else:
            total = self._total.draw(values, drawer)
            if total < need:
                raise EmptyRange(self.name, total, f"{total} units cannot hold {self.stages} stages of >= {minimum}")
        return list(drawer.split(self.name, total, self.stages, minimum))

    def options(self, values: Values) -> list[Any] | None:
        minimum = self.minimum(values)
        return [list(s) for t in self.totals(values) for s in all_splits(t, self.stages, minimum)]

    def describe(self) -> str:
        minimum = "max(1, 2*(fold-1))" if self.min_per_stage == "auto" else str(self.min_per_stage)
        return f"split {self._total.describe()} units over {self.stages} stages (>= {minimum} each)"


# Explicit registry: the YAML key that identifies each kind.
KINDS: dict[str, type[Param]] = {
    "value": Constant,
    "choice": Choice,
    "grid": Grid,
    "low": Range,
    "high": Range,
    "expr": Derived,
    "match": Match,
    "split": Split,
}


def parse_param(path: str, raw: Any) -> Param:
    """Turn one YAML value into a parameter; errors are located under ``path``."""
    if not isinstance(raw, Mapping):
        return Constant(value=raw)
    kinds = {KINDS[key] for key in raw if key in KINDS}
    if not kinds:
        raise ConfigError(path, dict(raw), "names no parameter kind; use one of value, choice, grid, "
                                           "low/high, expr, match, split (a constant must not be a mapping)")
    if len(kinds) > 1:
        keys = sorted(key for key in raw if key in KINDS)
        raise ConfigError(path, dict(raw), f"mixes parameter kinds ({', '.join(keys)}); use one")
    (cls,) = kinds
    try:
        return cls(**raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}.{exc.field}", exc.value, exc.allowed) from None
