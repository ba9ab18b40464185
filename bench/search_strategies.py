"""Which search strategy finds the best front for the compute? Measured on a recorded benchmark.

Every network of ``fmnist-bench`` was trained once to the end and recorded with its whole
learning curve (bench/records/fmnist-bench.csv, ``resnetx record``). Each strategy is then run
as the sweep runs it, the sweep's own searcher and scheduler objects, against the record instead
of training (``sweep.simulator``: simulated time, 2 trials at a time as on the recording
machine), 20 seeds each, until it has spent the record's whole compute (the seconds it took to
train every network once) or its searcher stops:

    random         --search random
    tpe            --search optuna                      (multi-objective TPE, the sweep's default)
    random+asha    --search random --scheduler asha
    tpe+asha       --search optuna --scheduler asha
    tpe+moasha     --search optuna --scheduler moasha

Compute is the sum of the recorded epoch times of every epoch a strategy ran. Hypervolume is of
the *finished* trials' (val_acc, params), what a sweep's report ranks, with the space's fixed
reference point; it is given as a fraction of the record's true front (every network, trained
to the end). For each strategy: median and interquartile range over seeds at fixed budgets, and
the compute it needs for its median to reach 95% of the true front's hypervolume.

    .venv/bin/python bench/search_strategies.py                       # 5 strategies x 20 seeds
    .venv/bin/python bench/search_strategies.py --seeds 5 --strategies random,tpe --jobs 1
    make bench-strategies                                            # the same as the first line

Writes a JSON of every curve and a PNG of the medians (``--out``, default bench/results/).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

STRATEGIES = {  # name -> (--search, --scheduler, --rung-metric): explicit, the order of the table
    "random": ("random", "none", "accuracy"),
    "tpe": ("optuna", "none", "accuracy"),
    "random+asha": ("random", "asha", "accuracy"),
    "tpe+asha": ("optuna", "asha", "accuracy"),
    "tpe+moasha": ("optuna", "moasha", "accuracy"),
    "random+asha-tse": ("random", "asha", "tse"),
    "tpe+asha-tse": ("optuna", "asha", "tse"),
    "tpe+moasha-tse": ("optuna", "moasha", "tse"),
}
TABLE_BUDGETS = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of the record's total compute
GRID = np.linspace(0.0, 1.0, 201)  # the curves' budget grid (fractions of total compute)
OBJECTIVES = "val_acc:max,params:min"
TARGET = 0.95  # of the true front's hypervolume
SWEEP_SIZES = (32, 64, 128)  # trial counts at which a sweep's compute and hypervolume are kept
BASELINE_TRIALS = "64"  # "random's final": a 64-trial random sweep, the replayed-sweep size


@functools.lru_cache(maxsize=2)
def loaded(record_path: str) -> tuple:
    """The record, its space, the objectives, reference, directions and true hypervolume: read once per process."""
    from reports.hypervolume import hypervolume
    from reports.pareto import parse_objectives
    from search_spaces import load_space
    from sweep.tracking.record import read_record

    record = read_record(record_path)
    space = load_space(record.space)
    objectives = parse_objectives(OBJECTIVES)
    reference, maximize = reference_point(space, objectives), [o.maximize for o in objectives]
    true_hv = hypervolume(record.final()[["val_acc", "params"]].to_numpy(float), reference, maximize)
    return record, space, objectives, reference, maximize, true_hv


def run_one(args: tuple[str, str, int, int, float]) -> dict:
    """One simulated sweep: its hypervolume (fraction of the true front's) on GRID. In a worker process."""
    record_path, strategy, seed, workers, grace = args
    warnings.filterwarnings("ignore")
    from reports.hypervolume import hypervolume
    from sweep.simulator import make_simulation

    record, space, objectives, reference, maximize, true_hv = loaded(record_path)
    total = record.total_compute()
    search, scheduler, rung_metric = STRATEGIES[strategy]
    started = time.perf_counter()
    sim = make_simulation(record, space, objectives, search=search, scheduler=scheduler, seed=seed,
                          num_samples=100_000, workers=workers, grace_period=grace, compute_limit=total,
                          rung_metric=rung_metric)
    elapsed = time.perf_counter() - started
    done = sim.finished()

    def curve_of(trials) -> list[float]:
        out = []
        for fraction in GRID:
            points = [[t.last["val_acc"], t.last["params"]] for t in trials if t.compute_at_end <= fraction * total]
            out.append(hypervolume(points, reference, maximize) / true_hv if points else 0.0)
        return out

    ends = sorted(t.compute_at_end for t in sim.trials)
    after = {}  # a sweep of n trials: its compute and its hypervolume (finished trials)
    for n in SWEEP_SIZES:
        if len(ends) >= n:
            points = [[t.last["val_acc"], t.last["params"]] for t in done if t.compute_at_end <= ends[n - 1]]
            after[str(n)] = {"compute": ends[n - 1] / total,
                             "hypervolume": hypervolume(points, reference, maximize) / true_hv if points else 0.0}
    return {"strategy": strategy, "seed": seed, "curve": curve_of(done), "curve_all": curve_of(sim.trials),
            "after_trials": after,
            "trials": len(sim.trials), "finished": len(done), "compute": sim.compute / total,
            "stop_reason": sim.stop_reason, "seconds": elapsed}


def reference_point(space, objectives) -> list[float]:
    fixed = space.reference_point(objectives)
    if fixed is None:
        raise SystemExit(f"space {space.name} has no fixed hypervolume reference for {OBJECTIVES}")
    return fixed[0]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(q1), float(median), float(q3)


def first_budget(curve: np.ndarray, level: float) -> float | None:
    """The smallest budget (fraction of total compute) at which ``curve`` reaches ``level``."""
    hits = np.nonzero(curve >= level - 1e-12)[0]
    return float(GRID[hits[0]]) if hits.size else None


def summarise(runs: list[dict], which: str = "curve") -> dict:
    """Medians and IQRs per strategy and budget; compute to reach the target; the issue's three targets.

    ``which``: ``curve`` (finished trials only, what a sweep's report ranks) or ``curve_all`` (every
    trial at its last reported epoch, stopped ones included, as Syne Tune's plots count them)."""
    by = {s: np.array([r[which] for r in runs if r["strategy"] == s]) for s in STRATEGIES}
    by = {s: c for s, c in by.items() if c.size}
    medians = {s: np.median(c, axis=0) for s, c in by.items()}
    baseline = [r["after_trials"].get(BASELINE_TRIALS) for r in runs if r["strategy"] == "random"]
    baseline = [b for b in baseline if b]
    table = {}
    for s, curves in by.items():
        at = {}
        for b in TABLE_BUDGETS:
            i = int(np.argmin(np.abs(GRID - b)))
            at[str(b)] = quartiles(list(curves[:, i]))
        per_seed = [first_budget(c, TARGET) for c in curves]
        reached = [x for x in per_seed if x is not None]
        after = {}
        for n in SWEEP_SIZES:
            got = [r["after_trials"][str(n)] for r in runs if r["strategy"] == s and str(n) in r["after_trials"]]
            if len(got) == len(curves):  # every seed ran that many trials
                after[str(n)] = {k: statistics.median(g[k] for g in got) for k in ("compute", "hypervolume")}
        table[s] = {"at_budget": at, "after_trials": after,
                    "median_curve_reaches_target_at": first_budget(medians[s], TARGET),
                    "seeds_reaching_target": len(reached), "seeds": len(curves),
                    "median_budget_of_seeds_reaching": statistics.median(reached) if reached else None}
    random_final = None
    if baseline:
        random_final = (statistics.median(b["hypervolume"] for b in baseline),
                        statistics.median(b["compute"] for b in baseline))
    return {"table": table, "targets": targets(medians, random_final)}


def targets(medians: dict[str, np.ndarray], random_final: tuple[float, float] | None) -> dict:
    """The three targets of the benchmark issue, each with the numbers that decide it.

    ``random_final``: (median hypervolume, median compute) of a 64-trial random sweep, the
    baseline of the early-stopping target (random run to the whole record reaches the true front
    by construction, so "its final" must be a sweep of a size users run)."""
    out: dict[str, dict] = {}
    from_quarter = GRID >= 0.25 - 1e-12
    if "tpe" in medians and "random" in medians:
        gap = medians["tpe"][from_quarter] - medians["random"][from_quarter]
        worst = int(np.argmin(gap))
        out["tpe_ge_random_from_25pct"] = {"met": bool((gap >= 0).all()), "worst_gap": float(gap[worst]),
                                           "worst_at_budget": float(GRID[from_quarter][worst])}
    if random_final is not None:
        final, random_at = random_final
        for s in ("random+asha", "tpe+asha", "tpe+moasha"):
            if s in medians:
                at = first_budget(medians[s], final)
                out[f"{s}_reaches_random_64_trial_hv"] = {
                    "random_hv": final, "random_budget": random_at, "budget": at,
                    "budget_over_random": at / random_at if at is not None else None,
                    "met": at is not None and at <= 0.5 * random_at}
    if "tpe+moasha" in medians and "tpe+asha" in medians:
        gap = medians["tpe+moasha"] - medians["tpe+asha"]
        worst = int(np.argmin(gap))
        out["moasha_ge_asha"] = {"met": bool((gap >= -1e-12).all()), "worst_gap": float(gap[worst]),
                                 "worst_at_budget": float(GRID[worst]),
                                 "share_of_budgets_ge": float(np.mean(gap >= -1e-12))}
    return out


def plot(runs: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=120)
    ax = fig.add_subplot()
    for s in STRATEGIES:
        curves = np.array([r["curve"] for r in runs if r["strategy"] == s])
        if not curves.size:
            continue
        q1, med, q3 = np.percentile(curves, [25, 50, 75], axis=0)
        line, = ax.plot(GRID * 100, med, label=s)
        ax.fill_between(GRID * 100, q1, q3, color=line.get_color(), alpha=0.15)
    ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("compute spent (% of training every network of the record once)")
    ax.set_ylabel("hypervolume / true front's")
    ax.set_ylim(0.5, 1.005)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("fmnist-bench: median and IQR over seeds (val_acc:max, params:min)")
    fig.tight_layout()
    fig.savefig(path)


def render(summary: dict, meta: dict) -> str:
    lines = [f"record {meta['record']} ({meta['networks']} networks, total compute {meta['total_compute_s']:,.0f} s); "
             f"{meta['seeds']} seeds, {meta['workers']} workers, reference {meta['reference']}",
             "", "| strategy | " + " | ".join(f"{int(b * 100)}% compute" for b in TABLE_BUDGETS)
             + f" | median reaches {int(TARGET * 100)}% at | seeds reaching |",
             "|---" * (len(TABLE_BUDGETS) + 3) + "|"]
    for s, row in summary["table"].items():
        cells = [f"{m:.3f} [{q1:.3f}, {q3:.3f}]" for q1, m, q3 in (row["at_budget"][str(b)] for b in TABLE_BUDGETS)]
        reach = row["median_curve_reaches_target_at"]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {f'{reach * 100:.1f}%' if reach is not None else 'never'}"
                     f" | {row['seeds_reaching_target']}/{row['seeds']} |")
    lines += ["", "| strategy | " + " | ".join(f"after {n} trials: compute, hypervolume" for n in SWEEP_SIZES) + " |",
              "|---" * (len(SWEEP_SIZES) + 1) + "|"]
    for s, row in summary["table"].items():
        cells = []
        for n in SWEEP_SIZES:
            got = row["after_trials"].get(str(n))
            cells.append(f"{got['compute'] * 100:.1f}%, {got['hypervolume']:.3f}" if got else "-")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "targets:"]
    for name, target in summary["targets"].items():
        lines.append(f"- {name}: {'met' if target['met'] else 'MISSED'} "
                     + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in target.items() if k != "met"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", default="bench/records/fmnist-bench.csv")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--workers", type=int, default=2, help="simulated trials at a time (the recording's)")
    parser.add_argument("--grace-period", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    from reports.pareto import parse_objectives
    from search_spaces import load_space
    from sweep.tracking.record import read_record

    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--strategies: got {', '.join(unknown)}; must be among {', '.join(STRATEGIES)}")
    record = read_record(args.record)
    space = load_space(record.space)
    jobs = [(args.record, s, seed, args.workers, args.grace_period) for s in strategies for seed in range(args.seeds)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(run_one, jobs))
    wall = time.perf_counter() - started
    meta = {"record": args.record, "networks": len(record.keys), "total_compute_s": record.total_compute(),
            "seeds": args.seeds, "workers": args.workers, "grace_period": args.grace_period,
            "reference": reference_point(space, parse_objectives(OBJECTIVES)), "objectives": OBJECTIVES,
            "machine": platform.processor() or platform.machine(), "wall_s": wall,
            "record_provenance": record.provenance}
    summary, summary_all = summarise(runs), summarise(runs, "curve_all")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_strategies.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                            "summary_all_results": summary_all, "runs": runs}))
    plot(runs, out / "search_strategies.png")
    print("finished trials only (what a sweep's report ranks):")
    print(render(summary, meta))
    print("\nevery trial at its last reported epoch (stopped ones included):")
    print(render(summary_all, meta))
    finished = {s: statistics.median(r["finished"] for r in runs if r["strategy"] == s) for s in strategies}
    trials = {s: statistics.median(r["trials"] for r in runs if r["strategy"] == s) for s in strategies}
    print("\nmedian trials (finished): " + ", ".join(f"{s} {trials[s]:.0f} ({finished[s]:.0f})" for s in strategies))
    per = {s: statistics.mean(r["seconds"] for r in runs if r["strategy"] == s) for s in strategies}
    print("\nseconds per simulated sweep: " + ", ".join(f"{s} {v:.1f}" for s, v in per.items())
          + f"; wall {wall:.0f} s with {args.jobs} processes")
    print(f"wrote {out / 'search_strategies.json'} and {out / 'search_strategies.png'}")


if __name__ == "__main__":
    main()
