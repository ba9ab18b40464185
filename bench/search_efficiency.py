"""Search efficiency: hypervolume reached by multi-objective Optuna (TPE) against random search.

Same space (``quick`` unless --space), same budget of trials, several sweep seeds each. Every
proposal comes from the sweep's own searcher (``sweep.tune.searcher.ResNetXSearcher``, the object
Ray Tune drives in a real sweep: budgets, de-duplication and seeds included), and every proposed
network is really trained on digits, in this process, one trial at a time. A network proposed
by both methods (same config hash) is trained once and its result shared, which keeps the
comparison fair and the benchmark affordable. Hypervolume uses one fixed reference point for
every run: val_acc 0 and params = the space's max_params (log10 params, so every decade of size
counts the same).

    .venv/bin/python bench/search_efficiency.py                      # quick, 16 trials, seeds 0-2
    .venv/bin/python bench/search_efficiency.py --trials 24 --seeds 5 --set train.epochs=3
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch

from reports.hypervolume import hypervolume
from reports.pareto import parse_objectives
from search_spaces import load_space
from sweep.config.experiment import ExperimentConfig
from sweep.config.overrides import apply_sets, merge
from sweep.search.proposers import make_proposer
from sweep.training.loop import train
from sweep.tune.searcher import ResNetXSearcher

OBJECTIVES = parse_objectives("val_acc:max,params:min")


def evaluate(config: dict, cache: dict[str, dict], data) -> dict:
    """Train once per config hash; later proposals of the same network reuse the result."""
    cfg = ExperimentConfig(**config["experiment"])
    key = cfg.config_hash()
    if key not in cache:
        result = train(cfg, data=data)
        cache[key] = {"val_acc": result.final["val_acc"], "params": result.final["params"],
                      "status": result.status}
    return cache[key]


def run(search: str, seed: int, space, trials: int, overrides: dict, cache: dict, data) -> list[float]:
    """Hypervolume after each trial of one sweep (sequential ask / train / tell)."""
    searcher = ResNetXSearcher(space, make_proposer(search, space, OBJECTIVES, seed, trials), OBJECTIVES, seed,
                               overrides=overrides)
    reference = [0.0, math.log10(space.max_params or 1e7)]
    points, curve = [], []
    for i in range(trials):
        config = searcher.suggest(f"{search}-{seed}-{i}")
        if not isinstance(config, dict):
            break
        result = evaluate(config, cache, data)
        searcher.on_trial_complete(f"{search}-{seed}-{i}", result)
        if result["status"] == "finished":
            points.append([result["val_acc"], math.log10(result["params"])])
        curve.append(hypervolume(points, reference, [True, False]) if points else 0.0)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="quick")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="override trial configs")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    space = load_space(args.space)
    overrides = apply_sets({}, ["train.num_threads=" + str(os.cpu_count() or 1), *args.sets])
    from sweep.data.load import load_dataset

    sample = ExperimentConfig(**merge(space.sample(__import__("random").Random(0)), overrides))
    data = load_dataset(sample.data)
    cache: dict[str, dict] = {}
    started = time.monotonic()
    finals: dict[str, list[float]] = {"optuna": [], "random": []}
    for seed in range(args.seeds):
        for search in ("optuna", "random"):
            curve = run(search, seed, space, args.trials, overrides, cache, data)
            finals[search].append(curve[-1])
            print(f"seed {seed} {search:6s} hypervolume by trial: " + " ".join(f"{v:.3f}" for v in curve))
    ratios = [o / r for o, r in zip(finals["optuna"], finals["random"]) if r > 0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; space {space.name}, {args.trials} trials, "
          f"{args.seeds} seeds; {len(cache)} distinct networks trained in {time.monotonic() - started:.0f} s")
    for search, values in finals.items():
        print(f"{search:6s} final hypervolume: median {statistics.median(values):.3f} "
              f"(min {min(values):.3f}, max {max(values):.3f})")
    print(f"optuna / random, per seed: {', '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
