"""How many distinct networks a space holds, after de-duplication by ``canonical_hash``.

Many points of a space build the same network: any ``start_id``/``end_id`` when ``fold == 1``,
folds whose skips coincide on a short range, widths that round alike. The honest size of a
space is therefore the number of distinct canonical forms, which needs enumeration.

Brute force (build every point's config, ~50 us each) is fine up to ~10^5 points, but a
Pareto space is 10^6-10^7. It factorises, though: the canonical form of a config is its
wiring part (``num_nodes`` and every node's predecessor, which only ``num_nodes``, ``fold``,
``start_id`` and ``end_id`` decide) joined with a part that only the other fields and the
number of stages decide (unit, stem, widths, strides, ...). The one coupling is ``shortcut``,
which counts only if some node projects; with two or more stages the first node of stage 2
always projects (stride 2), so for those the two parts are independent and the count is
``sum over stages S of |wirings with S stages| * |other parts at S stages|``. One-stage
wirings are counted by brute force, and a spot check compares the factorised form with the
real ``canonical()`` so a change in ``resnetx`` cannot silently skew the count.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from resnetx import ResNetXConfig
from resnetx.errors import ConfigError
from resnetx.wiring import get_pred
from search_spaces.expressions import DERIVED
from search_spaces.params import Param, Range
from search_spaces.walk import all_points

WIRING = ("model.num_nodes", "model.fold", "model.start_id", "model.end_id")
BRUTE_FORCE_LIMIT = 100_000  # points whose configs are built one by one
WIRING_LIMIT = 2_000_000  # wiring points (cheap: integers only)
DEFAULT_NUM_NODES = ResNetXConfig.model_fields["num_nodes"].default


class TooLarge(Exception):
    pass


def _deps(field: Param) -> set[str]:
    return {DERIVED.get(r, r) for r in field.refs()}


def _closure(fields: Sequence[Param], names: set[str]) -> list[Param]:
    by_name = {f.name: f for f in fields}
    todo, seen = list(names), set(names)
    while todo:
        for dep in _deps(by_name[todo.pop()]):
            if dep in by_name and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return [f for f in fields if f.name in seen]


def _components(fields: Sequence[Param]) -> list[list[Param]]:
    """Groups of fields linked by references (either way), in field order."""
    parent = {f.name: f.name for f in fields}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for f in fields:
        for dep in _deps(f):
            if dep in parent:
                parent[root(dep)] = root(f.name)
    groups: dict[str, list[Param]] = defaultdict(list)
    for f in fields:
        groups[root(f.name)].append(f)
    return list(groups.values())


def _model_part(values: dict[str, Any]) -> dict[str, Any]:
    return {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("model.") and k not in DERIVED}


def _canonical(model: dict[str, Any]) -> str | None:
    try:
        return json.dumps(ResNetXConfig(**model).canonical(), sort_keys=True)
    except ConfigError:
        return None


def _points(fields: Sequence[Param], limit: int) -> list[dict[str, Any]]:
    out = []
    for point in all_points(fields):
        out.append(point)
        if len(out) > limit:
            raise TooLarge
    return out


def _brute_force(fields: Sequence[Param]) -> int:
    keys = set()
    for count, point in enumerate(all_points(fields), 1):
        if count > BRUTE_FORCE_LIMIT:
            raise TooLarge
        key = _canonical(_model_part(point))
        if key is not None:
            keys.add(key)
    return len(keys)


def _wiring_key(point: dict[str, Any], cache: dict[tuple, tuple | None]) -> tuple | None:
    """``(num_nodes, preds)`` of a point's flat values, or None if the wiring is invalid
    (``ResNetXConfig``'s id rules)."""
    num_nodes = tuple(point.get("model.num_nodes", DEFAULT_NUM_NODES))
    fold = point.get("model.fold", 1)
    start, end = point.get("model.start_id"), point.get("model.end_id")
    ids = (sum(num_nodes), fold, start, end)
    if ids not in cache:
        total = ids[0]
        s = fold if start is None else start
        e = total if end is None else end
        valid = fold >= 1 and fold <= s <= total and e <= total and (e > s if fold > 1 else e >= s)
        cache[ids] = tuple(get_pred(n, fold, s, e) for n in range(1, total + 1)) if valid else None
    preds = cache[ids]
    return None if preds is None else (num_nodes, preds)


def _other_key(model: dict[str, Any], stages: int) -> str | None:
    """The canonical form without its wiring part, at ``stages`` stages."""
    probe = {k: v for k, v in model.items() if k not in ("num_nodes", "fold", "start_id", "end_id")}
    try:
        canonical = ResNetXConfig(**probe, num_nodes=(1,) * stages).canonical()
    except ConfigError:
        return None
    for key in ("num_nodes", "preds"):
        canonical.pop(key)
    return json.dumps(canonical, sort_keys=True)


class Mismatch(Exception):
    """The factorised canonical form disagrees with ``ResNetXConfig.canonical()``."""


def _factorised(wiring: list[Param], others: list[list[Param]], spot_checks: int = 24) -> int:
    cache: dict[tuple, tuple | None] = {}
    by_stages: dict[int, dict[tuple, dict[str, Any]]] = defaultdict(dict)  # stages -> key -> one model
    for count, point in enumerate(all_points(wiring), 1):
        if count > WIRING_LIMIT:
            raise TooLarge
        key = _wiring_key(point, cache)
        if key is not None and key not in by_stages[len(key[0])]:
            by_stages[len(key[0])][key] = _model_part(point)
    parts = [_points(group, BRUTE_FORCE_LIMIT) for group in others]
    if sum(1 for _ in itertools.islice(itertools.product(*parts), BRUTE_FORCE_LIMIT + 1)) > BRUTE_FORCE_LIMIT:
        raise TooLarge
    rest = [_model_part({k: v for p in combo for k, v in p.items()}) for combo in itertools.product(*parts)]
    total = 0
    rng = random.Random(0)
    for stages, wirings in sorted(by_stages.items()):
        if stages == 1:  # whether `shortcut` counts depends on both parts: brute force the pairs
            if len(wirings) * len(rest) > BRUTE_FORCE_LIMIT:
                raise TooLarge
            keys = {_canonical({**r, **w}) for w in wirings.values() for r in rest}
            total += len(keys - {None})
            continue
        other_keys = {k for r in rest if (k := _other_key(r, stages)) is not None}
        total += len(wirings) * len(other_keys)
        items = list(wirings.items())
        for _ in range(spot_checks):
            key, w = rng.choice(items)
            _spot_check(key, w, rng.choice(rest), stages)
    return total


def _spot_check(key: tuple, wiring: dict[str, Any], rest: dict[str, Any], stages: int) -> None:
    """The full canonical form must be the wiring key joined with the other part."""
    full = _canonical({**rest, **wiring})
    other = _other_key(rest, stages)
    if full is None or other is None:
        if (full is None) != (other is None):
            raise Mismatch
        return
    canonical = json.loads(full)
    if (tuple(canonical.pop("num_nodes")), tuple(canonical.pop("preds"))) != key:
        raise Mismatch
    if json.dumps(canonical, sort_keys=True) != other:
        raise Mismatch


def count_distinct(fields: Sequence[Param]) -> int | None:
    """Distinct networks (canonical hashes) among the model parts of every point of the space.

    None when a model field is continuous (infinitely many points) or the space is too large
    to enumerate (more than ~10^5 configs to build after factorising).
    """
    model = _closure(fields, {f.name for f in fields if f.name.startswith("model.")})
    if any(isinstance(f, Range) and f.type == "float" and not f.step for f in model):
        return None
    components = _components(model)
    wiring_groups = [g for g in components if any(f.name in WIRING for f in g)]
    others = [g for g in components if not any(f.name in WIRING for f in g)]
    wiring = [f for f in model if any(f in g for g in wiring_groups)]
    try:
        if all(f.name in WIRING for f in wiring):
            try:
                return _factorised(wiring, others)
            except Mismatch:
                pass
        return _brute_force(model)
    except TooLarge:
        return None
