"""Model overhead: ResNetX against torchvision's ResNet, and folded against unfolded, side by side.

Two questions, both answered as ratios measured in one process so machine speed cancels out:

1. Does the ResNetX wiring (plan, ring buffer, Identity shortcuts) cost anything? ResNetX with
   ``fold=1`` is torchvision's ResNet tensor for tensor; we load torchvision's weights into it
   and time a training step (forward + backward) of both, alternating A-B / B-A so that drift
   in machine load hits both equally. Reported: median of the per-pair ratios ours/theirs.
2. What does folding cost at equal size? ``fold = 2, 3, 4`` (folded from node ``fold`` to the
   last, like the built-in ``<name>-fold<K>``) add shortcut projections, so each folded net is
   also shown with its ``base`` width reduced to the integer that brings its parameter count
   closest to the unfolded net's. Each fold is timed against fold 1, alternating, as above.

Usage::

    .venv/bin/python bench/model_overhead.py              # full run (a few minutes on 2 cores)
    .venv/bin/python bench/model_overhead.py --quick      # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from resnetx import ResNetXConfig, build_model, builtin_config, count_flops, count_params, load_torchvision_weights


@dataclass
class Pair:
    """Per-step times (seconds) of two models timed alternately, and the per-pair ratios a/b."""

    a: list[float]
    b: list[float]

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b)]

    def ratio_summary(self) -> str:
        q = statistics.quantiles(self.ratios, n=4)
        return f"{statistics.median(self.ratios):.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], float]:
    """A closure timing one forward + backward (the work of a training step, minus the optimiser)."""

    def step() -> float:
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        return time.perf_counter() - start

    return step


def alternate(a: Callable[[], float], b: Callable[[], float], repeats: int, warmup: int) -> Pair:
    for _ in range(warmup):
        a(), b()
    pair = Pair([], [])
    for i in range(repeats):
        if i % 2 == 0:
            pair.a.append(a())
            pair.b.append(b())
        else:
            pair.b.append(b())
            pair.a.append(a())
    return pair


def inputs(batch: int, side: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, side, side, generator=g), torch.randint(0, classes, (batch,), generator=g)


def vs_torchvision(name: str, batch: int, side: int, repeats: int, warmup: int) -> tuple[int, Pair]:
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().train()
    ours = build_model(name).train()
    report = load_torchvision_weights(ours, theirs.state_dict())
    if report.fresh or report.unused:
        raise RuntimeError(f"{name}: not a 1:1 copy of torchvision's ({report.summary()})")
    x, y = inputs(batch, side, 1000)
    return count_params(ours), alternate(train_step(ours, x, y), train_step(theirs, x, y), repeats, warmup)


def equal_size(folded: ResNetXConfig, target: int) -> ResNetXConfig:
    """The folded config with the integer ``base`` whose parameter count is closest to ``target``.

    Parameters grow monotonically with ``base`` (every width is ``base * exp**i``), so bisect.
    """
    low, high = 1, folded.base  # folding only adds projections: the answer is <= the current base
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count_params(folded.replace(base=mid)) <= target else (low, mid)
    candidates = [folded.replace(base=b) for b in (low, high)]
    return min(candidates, key=lambda cfg: abs(count_params(cfg) - target))


def fold_rows(name: str, batch: int, side: int, repeats: int, warmup: int, folds: list[int]) -> list[list[str]]:
    unfolded = builtin_config(name)
    target = count_params(unfolded)
    x, y = inputs(batch, side, unfolded.num_classes)
    torch.manual_seed(0)
    reference = build_model(unfolded).train()
    flops = count_flops(unfolded, (3, side, side))
    rows = [[name, "1", str(unfolded.base), f"{target:,}", "+0.0%", "+0.0%", "1 (reference)"]]
    for fold in folds:
        same = builtin_config(f"{name}-fold{fold}")
        equal = equal_size(same, target)
        variants = [("same base", same), ("equal params", equal)] if equal.base != same.base else [
            ("same base = closest to equal params", same)]
        for label, cfg in variants:
            params = count_params(cfg)
            pair = alternate(train_step(build_model(cfg).train(), x, y), train_step(reference, x, y), repeats, warmup)
            rows.append([name, f"{fold} ({label})", str(cfg.base), f"{params:,}",
                         f"{100 * (params - target) / target:+.1f}%",
                         f"{100 * (count_flops(cfg, (3, side, side)) - flops) / flops:+.1f}%", pair.ratio_summary()])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="timed steps per model (alternating)")
    parser.add_argument("--fold-repeats", type=int, default=20, help="timed steps per model in the fold table")
    parser.add_argument("--warmup", type=int, default=3)
    # One thread by default: on a shared 2-core machine a second OpenMP thread spins against the
    # other jobs' load and makes step times swing by 10x; one thread gives stable ratios.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--part", choices=("all", "torchvision", "folds"), default="all", help="which table(s) to run")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: few repeats, small inputs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats, fold_repeats, warmup = (3, 3, 1) if args.quick else (args.repeats, args.fold_repeats, args.warmup)
    side = 32 if args.quick else 64
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} thread(s), "
          f"{repeats} (folds: {fold_repeats}) alternating repeats after {warmup} warm-up steps; "
          "ratio = median [quartiles] of per-pair ratios")

    if args.part in ("all", "torchvision"):
        print_torchvision_table(side, repeats, warmup)
    if args.part in ("all", "folds"):
        print_fold_table(side, fold_repeats, warmup)


def print_torchvision_table(side: int, repeats: int, warmup: int) -> None:
    print("\n## ResNetX (fold=1) vs torchvision, forward+backward, train mode\n")
    rows = []
    for name, batch in [("resnet18", 16), ("resnet50", 8)]:
        params, pair = vs_torchvision(name, batch, side, repeats, warmup)
        rows.append([name, f"{batch}x3x{side}x{side}", f"{params:,}", f"{1000 * statistics.median(pair.a):.1f}",
                     f"{1000 * statistics.median(pair.b):.1f}", pair.ratio_summary()])
    print(table(["model", "input", "params", "ResNetX ms", "torchvision ms", "ratio ResNetX/torchvision"], rows))


def print_fold_table(side: int, fold_repeats: int, warmup: int) -> None:
    print("\n## fold K vs fold 1, forward+backward, train mode\n")
    rows = []
    for name, batch in [("resnet18", 16), ("resnet50", 8)]:
        rows += fold_rows(name, batch, side, fold_repeats, warmup, [2, 3, 4])
    print(table(["model", "fold", "base", "params", "params vs fold 1", "FLOPs vs fold 1",
                 "time ratio fold K / fold 1"], rows))


if __name__ == "__main__":
    main()
