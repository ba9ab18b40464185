"""``SearchSpace``: a compiled space file and everything a sweep asks of it.

One ordered list of fields is the single source of truth; seeded sampling, Optuna's
define-by-run, Ray Tune's ``param_space``, grids and counting all walk it. A sample is a
nested experiment dict ``{"model": {...}, "data": {...}, "train": {...}}`` whose model always
builds and, for :meth:`SearchSpace.sample`, meets the budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from resnetx import ResNetXConfig
from resnetx.errors import ConfigError
from search_spaces.cost import Cost, config_cost
from search_spaces.counting import count_distinct
from search_spaces.drawers import OptunaDrawer, RandomDrawer
from search_spaces.params import Constant, EmptyRange, Param, Split
from search_spaces.schema import SpaceFile, check_static, compile_fields
from search_spaces.tune_adapter import from_tune_config, tune_param_space
from search_spaces.walk import all_points, build_model_config, draw_point, nest

MAX_TRIES = 1000  # rejection sampling: draws per sample before the space is declared infeasible
PROBE_DRAWS = 256  # draws at load time that must all build (catches contradictory bounds early)


MAX_EVERY_POINT = 100_000  # --search grid over a finite space: beyond this, search instead


class SearchSpace:
    """A validated search space over ResNetX experiments."""

    def __init__(self, spec: SpaceFile, source: str = "<memory>") -> None:
        self.spec = spec
        self.source = source
        self.name = spec.name or "space"
        self.description = spec.description
        self.objectives: list[str] = list(spec.objectives)
        # The first stage the sweep runs itself (trials with train.weights: pretrained load its network).
        self.pretrain: dict[str, dict[str, Any]] | None = spec.pretrain.to_dict() if spec.pretrain else None
        # The confirm stage (resnetx confirm): its full-fidelity recipe ({"data": ..., "train": ...}) and rule.
        self.final: dict[str, dict[str, Any]] = spec.final.to_dict() if spec.final else {}
        self.confirm = spec.confirm
        self.fields: list[Param] = compile_fields(spec)
        check_static(self.fields)
        self.input_size: tuple[int, int, int] = spec.input_size or self._default_input_size()
        self._probe()

    # -- metadata ---------------------------------------------------------------------------
    @property
    def max_params(self) -> int | None:
        return self.spec.budget.max_params

    @property
    def max_flops(self) -> int | None:
        return self.spec.budget.max_flops

    def definition_hash(self) -> str:
        """SHA-256 of what decides which networks a space holds and how they train (model, data,
        train, budget, replicates, pretrain sections), not of its comments, description or
        hypervolume reference: a recorded benchmark stays valid while its space's prose changes."""
        import hashlib
        import json

        defining = self.spec.model_dump(include={"model", "data", "train", "budget", "replicates", "pretrain",
                                                 "input_size"})
        return hashlib.sha256(json.dumps(defining, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def seed_is_axis(self) -> bool:
        """True when replicate seeds are part of the search (they must not be de-duplicated)."""
        return any(f.name == "train.seed" and not isinstance(f, Constant) for f in self.fields)

    @property
    def is_grid(self) -> bool:
        """Every field is a constant, a grid axis or derived from them."""
        return not any(f.is_random for f in self.fields)

    def data_is_constant(self) -> bool:
        """True when every trial uses the same data settings (one dataset load serves them all)."""
        return all(isinstance(f, Constant) for f in self.fields if f.name.startswith("data."))

    def field(self, name: str) -> Param:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def _constant(self, name: str) -> Any:
        param = next((f for f in self.fields if f.name == name), None)
        if param is None:
            return ResNetXConfig.model_fields[name.split(".", 1)[1]].default if name.startswith("model.") else None
        return param.value if isinstance(param, Constant) else None

    def _default_input_size(self) -> tuple[int, int, int]:
        """(C, H, W) from constant ``model.in_channels`` and ``data.image_size``, else by stem."""
        channels = self._constant("model.in_channels") or 3
        side = self._constant("data.image_size")
        if not isinstance(side, int):
            side = 32 if self._constant("model.stem") == "cifar" else 224
        return (int(channels), side, side)

    def _probe(self) -> None:
        """A few hundred seeded draws must all get through their ranges and build.

        Optuna cannot re-draw a trial, so a space is valid by construction only if no draw ever
        meets an empty dependent range; contradictions are reported here, at load time.
        """
        rng = random.Random(0)
        for _ in range(PROBE_DRAWS):
            build_model_config(nest(draw_point(self.fields, RandomDrawer(rng)), self.fields)["model"])

    # -- drawing ----------------------------------------------------------------------------
    def sample(self, rng: random.Random, max_tries: int = MAX_TRIES) -> dict[str, dict[str, Any]]:
        """One valid point within budget, drawn from ``rng`` alone (same seed, same samples)."""
        reason = ""
        for _ in range(max_tries):
            try:
                values = draw_point(self.fields, RandomDrawer(rng))
            except EmptyRange as exc:
                reason = str(exc)
                continue
            config = nest(values, self.fields)
            violation = self.budget_violation(config)
            if violation is None:
                return config
            reason = violation
        raise ConfigError("space", self.name, f"no valid sample within budget in {max_tries} draws "
                                              f"(last: {reason}); widen the ranges or raise the budget")

    def suggest(self, trial: Any) -> dict[str, dict[str, Any]]:
        """Optuna define-by-run: suggests ``model.fold``, ``model.start_id``, ... in dependency order.

        Budgets are not enforced here (a trial cannot be re-drawn); check :meth:`budget_violation`.
        """
        return nest(draw_point(self.fields, OptunaDrawer(trial)), self.fields)

    # -- checking ---------------------------------------------------------------------------
    def cost(self, config: Mapping[str, Any]) -> Cost:
        """Parameters and forward FLOPs (at :attr:`input_size`) of a config's model."""
        return config_cost(build_model_config(dict(config.get("model") or {})), self.input_size)

    def reference_point(self, objectives: Sequence[Any], num_classes: int | None = None,
                        image_sizes: Sequence[int] | None = None) -> tuple[list[float], str] | None:
        """A fixed hypervolume reference for ``objectives`` (``.name``/``.maximize``), and where it came from.

        Fixed per space, so one outlier trial cannot change the hypervolume of an unchanged front
        (a reference taken from the sweep's worst trial can). Each objective's value comes from
        the space's ``reference:`` section, else from its budget (params: ``max_params``, flops:
        ``max_flops``), else, for an accuracy, chance level (1 / num_classes). None when some
        objective has none of these. ``num_classes``: the trials' class count (the caller knows it
        after ``--set`` overrides and the dataset filled the model); else the space's constant.

        ``image_sizes``: the image sides the trials train at (``--set data.image_size=28``), whose
        FLOPs they report; None: :attr:`input_size`. A FLOP value (the budget, or a ``reference:``
        value, both at :attr:`input_size`) is then multiplied by :meth:`flops_scale`, the most any
        network's FLOPs can grow from that size to these, so that it still bounds every network
        the budget admits (the budget keeps choosing networks at :attr:`input_size`).
        """
        values, sources = [], []
        explicit = any(f.name == "model.num_classes" for f in self.fields)
        classes = num_classes if num_classes is not None else (self._constant("model.num_classes") if explicit
                                                               else None)
        scale, at = 1.0, ""
        if image_sizes is not None and list(image_sizes) != [self.input_size[1]] * len(image_sizes):
            scale = self.flops_scale(image_sizes)
            sides = "/".join(f"{side}x{side}" for side in sorted(set(image_sizes)))
            at = f" at {'x'.join(map(str, self.input_size[1:]))}, x{scale:.4g} for {sides}"
        for objective in objectives:
            name = objective.name
            if name in self.spec.reference:
                values.append(float(self.spec.reference[name]) * (scale if name == "flops" else 1.0))
                sources.append(f"{name} {values[-1]:g} (the space's reference{at if name == 'flops' else ''})")
            elif name == "params" and self.max_params is not None:
                values.append(float(self.max_params))
                sources.append(f"params {self.max_params:,} (the space's max_params)")
            elif name == "flops" and self.max_flops is not None:
                values.append(float(math.ceil(self.max_flops * scale)))
                sources.append(f"flops {int(values[-1]):,} (the space's max_flops {self.max_flops:,}{at})"
                               if at else f"flops {self.max_flops:,} (the space's max_flops)")
            elif name.endswith("_acc") and objective.maximize and isinstance(classes, int) and classes > 0:
                values.append(1.0 / classes)
                sources.append(f"{name} {1.0 / classes:.4g} (chance level, {classes} classes)")
            else:
                return None
        return values, f"fixed by space {self.name}: " + ", ".join(sources)

    def flops_scale(self, image_sizes: Sequence[int]) -> float:
        """The most the forward FLOPs of any network of this space grow from :attr:`input_size` to
        square images of each side in ``image_sizes``: ``FLOPs(s) <= flops_scale([s]) * FLOPs(input_size)``.

        Derived from the model, not guessed: the FLOP counter counts convolutions, each in proportion
        to its output's area, and the head's matrix product, which does not depend on the image.
        Every ResNetX resolution is ``ceil(side / 2**j)`` (odd kernels padded by ``k // 2``; strided
        convolutions and ceil-mode pools round up, see ``resnetx.shortcuts``), for j from 0 to the
        most halvings a network of the space makes (:meth:`deepest_level`). A sum of terms that each
        grow by at most k grows by at most k: the bound is the largest area ratio over those levels,
        and 1 (the head). It is not ``(s / s0)**2``: from 16 to 28 the areas grow 3.06x at 16, 8
        and 4 pixels, but 4x at 2 (4x4 against 2x2), so a network reaching that level grows more.
        """
        _, height, width = self.input_size
        deepest = self.deepest_level()
        worst = 1.0
        for side in image_sizes:
            last = deepest if deepest is not None else max(side, height, width).bit_length()
            for j in range(last + 1):
                area = math.ceil(side / 2**j) ** 2
                worst = max(worst, area / (math.ceil(height / 2**j) * math.ceil(width / 2**j)))
        return worst

    def deepest_level(self) -> int | None:
        """The most times any network of this space halves the image (stem, then strided stages), or
        None when a field it depends on (stem, num_nodes, first_downsample) is not a known finite set."""
        from resnetx.wiring import total_reduction

        stems, depths, downsample = (self._possible(n) for n in ("model.stem", "model.num_nodes",
                                                                 "model.first_downsample"))
        split = next((f for f in self.fields if f.name == "model.num_nodes"), None)
        stages = {split.stages} if isinstance(split, Split) else ({len(d) for d in depths} if depths else None)
        if not stems or not stages or not downsample:
            return None
        plans = (ResNetXConfig(**dict[str, Any](num_nodes=[1] * n, first_downsample=bool(d))).plan()
                 for n in stages for d in downsample)
        stages_down = max(total_reduction(plan.strides) for plan in plans)
        return max(_stem_halvings(str(stem)) for stem in stems) + stages_down.bit_length() - 1

    def _possible(self, name: str) -> list[Any] | None:
        """Every value field ``name`` takes (the model's default when the space leaves it out), or None."""
        param = next((f for f in self.fields if f.name == name), None)
        if param is None:
            return [ResNetXConfig.model_fields[name.split(".", 1)[1]].default]
        if isinstance(param, Split) or param.refs():  # a split's lists, or values that depend on other fields
            return None
        return param.options({})

    def budget_excess(self, config: Mapping[str, Any]) -> float:
        """How far the model is over budget: <= 0 within it, > 0 over (relative: 0.5 = 50% over).

        The largest relative excess over the limits set (``params / max_params - 1``, same for
        FLOPs); Optuna's constraint handling learns the infeasible region from it.
        """
        model = build_model_config(dict(config.get("model") or {}))
        if self.max_params is None and self.max_flops is None:
            return -1.0
        cost = config_cost(model, self.input_size if self.max_flops is not None else None)
        excess = []
        if self.max_params is not None:
            excess.append(cost.params / self.max_params - 1.0)
        if self.max_flops is not None and cost.flops is not None:
            excess.append(cost.flops / self.max_flops - 1.0)
        return max(excess)

    def budget_violation(self, config: Mapping[str, Any]) -> str | None:
        """Why the config's model breaks the budget, or None. Raises ConfigError if it does not build."""
        model = build_model_config(dict(config.get("model") or {}))
        if self.max_params is None and self.max_flops is None:
            return None
        cost = config_cost(model, self.input_size if self.max_flops is not None else None)
        if self.max_params is not None and cost.params > self.max_params:
            return f"params {cost.params:,} > max_params {self.max_params:,}"
        if self.max_flops is not None and cost.flops is not None and cost.flops > self.max_flops:
            size = "x".join(map(str, self.input_size))
            return f"flops {cost.flops:,} at {size} > max_flops {self.max_flops:,}"
        return None

    # -- enumeration ------------------------------------------------------------------------
    def grid(self) -> list[dict[str, dict[str, Any]]]:
        """Every point of a grid space, first field outermost (replicate seeds outermost of all)."""
        random_fields = [f.name for f in self.fields if f.is_random]
        if random_fields:
            raise ConfigError("space", self.name, f"is not a grid ({', '.join(random_fields)} drawn at random); "
                                                  "use random or optuna search")
        points = [nest(values, self.fields) for values in all_points(self.fields)]
        for point in points:
            build_model_config(point["model"])
        return points

    def every_point(self, limit: int = MAX_EVERY_POINT) -> list[dict[str, dict[str, Any]]]:
        """Every point of a *finite* space (grid axes, choices, integer ranges, splits), in a stable order.

        What ``--search grid`` walks: a grid space's :meth:`grid`, or, for a space whose drawn fields
        all have finitely many values (``fmnist-bench``), every combination, so that a recorded
        benchmark can train each network once. Points that do not build are kept (the searcher
        counts them as invalid); duplicates of one network are kept too (the searcher reuses them).
        """
        if self.is_grid:
            return self.grid()
        points: list[dict[str, dict[str, Any]]] = []
        try:
            for values in all_points(self.fields):
                points.append(nest(values, self.fields))
                if len(points) > limit:
                    raise ConfigError("space", self.name, f"has more than {limit:,} points; --search grid walks "
                                                          "only small finite spaces: use random or optuna search")
        except ValueError as exc:  # a continuous field
            raise ConfigError("space", self.name, f"is not finite ({exc} is continuous); use random or optuna "
                                                  "search") from None
        return points

    def count_distinct(self) -> int | None:
        """Distinct networks after de-duplication by canonical hash; None if infinite or too large."""
        return count_distinct(self.fields)

    # -- Ray Tune ---------------------------------------------------------------------------
    def tune_param_space(self, kind: str) -> dict[str, Any]:
        """Flat ``param_space`` for ``BasicVariantGenerator``: kind ``random`` or ``grid``."""
        return tune_param_space(self.fields, kind)

    def from_tune_config(self, config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The nested experiment config from a Tune trial's config."""
        return from_tune_config(self.fields, config)

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, fields={len(self.fields)}, source={self.source!r})"


@cache
def _stem_halvings(kind: str) -> int:
    """How many times stem ``kind`` halves the image, measured on the meta device (64x64 in)."""
    import torch

    from resnetx.registry import STEMS

    with torch.device("meta"):
        out = STEMS[kind](1, 8)(torch.empty(1, 1, 64, 64))
    return (64 // int(out.shape[-1])).bit_length() - 1
