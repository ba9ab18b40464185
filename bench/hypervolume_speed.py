"""Hypervolume curve speed: the incremental exact curve against recomputing the volume, and Optuna.

The report draws hypervolume against trial count. The former code recomputed the whole volume
(WFG) every time the front changed; with 300 trials in 3 objectives and a large front that took
about a minute. The incremental curve adds each new front member's exclusive contribution.
All three are timed on the same points in one process, and their final volumes compared.

Usage::

    .venv/bin/python bench/hypervolume_speed.py                 # 300 trials, 3 objectives
    .venv/bin/python bench/hypervolume_speed.py --trials 100 --objectives 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reports.hypervolume import hypervolume, hypervolume_curve


def front_heavy_points(n: int, k: int, seed: int) -> np.ndarray:
    """Points near the unit simplex's positive sphere: most of them are mutually non-dominated."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(size=(n, k)))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * rng.uniform(0.9, 1.0, size=(n, 1))  # maximised objectives in (0, 1]


def recomputed(values: np.ndarray, maximize: list[bool], ref: list[float]) -> list[float]:
    """The former algorithm: the whole front's volume whenever the front changes."""
    curve, last, best = [], 0.0, np.empty((0, values.shape[1]))
    for row in values:
        if not (best.shape[0] and (best >= row).all(axis=1).any()):
            best = np.vstack([best, row])
            last = hypervolume(best, ref, maximize)
        curve.append(last)
    return curve


def optuna_curve(values: np.ndarray, ref: list[float]) -> list[float]:
    from optuna._hypervolume import compute_hypervolume

    curve, last, best = [], 0.0, np.empty((0, values.shape[1]))
    for row in values:
        if not (best.shape[0] and (best >= row).all(axis=1).any()):
            best = np.vstack([best, row])
            last = float(compute_hypervolume(-best, -np.asarray(ref)))  # Optuna minimises
        curve.append(last)
    return curve


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--objectives", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    values = front_heavy_points(args.trials, args.objectives, args.seed)
    maximize, ref = [True] * args.objectives, [0.0] * args.objectives
    t_new, new = timed(hypervolume_curve, values, maximize, ref)
    t_opt, opt = timed(optuna_curve, values, ref)
    t_old, old = timed(recomputed, values, maximize, ref)
    agree = max(abs(a - b) for a, b in zip(new, old))
    print(f"{args.trials} trials, {args.objectives} objectives; final hypervolume {new[-1]:.6f} "
          f"(max |incremental - recomputed| over the curve {agree:.2e}, Optuna {opt[-1]:.6f})")
    print(f"incremental {t_new:.3f} s | recomputed {t_old:.3f} s | Optuna {t_opt:.3f} s")
    print(f"ratio recomputed/incremental {t_old / t_new:.1f}x; Optuna/incremental {t_opt / t_new:.2f}x")


if __name__ == "__main__":
    main()
