"""Which search strategy finds the best front for the compute? Measured on a recorded benchmark.

Every network of a record (``bench/records/fmnist-bench.csv``, ``fmnist-bench-2.csv``) was trained
once to the end and recorded with its whole learning curve (``resnetx record``). Each strategy is
then run as the sweep runs it, the sweep's own searcher and scheduler objects, against the record
instead of training (``sweep.simulator``: simulated time, 2 trials at a time as on the recording
machine, every network's primary replicate), 30 seeds each, until it has spent the record's whole
compute (the seconds it took to train every network once) or its searcher stops. The strategies
(``STRATEGIES``: search, scheduler, rung metric, grace period) by default:

    random, tpe                          --search random / optuna, no scheduler
    random+asha-g1, tpe+asha-g1,         the old settings: --grace-period 1, rungs rank by accuracy
    tpe+moasha-g1
    random+asha, tpe+asha,               the sweep's defaults: --rung-metric auto (accuracy for asha,
    random+moasha, tpe+moasha            tse for moasha), grace period after the warm-up

Compute is the sum of the recorded epoch times of every epoch a strategy ran. Hypervolume is of
the *finished* trials' (val_acc, params), what a sweep's report ranks, with the space's fixed
reference point; it is given as a fraction of the record's true front (every network, trained
to the end). For each strategy at fixed budgets: the median with the interquartile range over
seeds, and the interquartile mean (IQM, the mean of the middle half of the seeds) with a
percentile-bootstrap 95% interval over seeds, as Syne Tune's benchmarking reports them; the
compute each needs for its median (and IQM) to reach 95% of the true front's hypervolume; the
benchmark issue's targets.

    .venv/bin/python bench/search_strategies.py                       # 9 strategies x 30 seeds
    .venv/bin/python bench/search_strategies.py --seeds 5 --strategies random,tpe --jobs 1
    make bench-strategies                                            # the same as the first line
    .venv/bin/python bench/search_strategies.py --strategies random,tpe+moasha \
        --reuse bench/results/rung-metric/fmnist-bench/search_strategies.json   # add an earlier study's runs

``--reuse`` adds the runs of every (strategy, seed) not run here from an earlier study of the same
record, seeds and workers (the simulation is deterministic in simulated time); the runs both made
must have the same curve, or it stops. ``--runs JSON`` re-summarises a study without simulating.

Writes a JSON of every curve and a PNG of the curves (``--out``, default bench/results/).
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
from scipy import stats

PRIOR_SEARCH = "optuna+params-prior"
PRIOR_DRAWS = 5  # the prior ranks PRIOR_DRAWS x n_startup random draws
# name -> (--search, --scheduler, --rung-metric, --grace-period): explicit, the order of the tables.
# Grace None is the sweep's default, the first epoch after the trials' warm-up (both records: one
# warm-up epoch, so 2); rung metric "auto" is the sweep's default (accuracy for asha, tse for moasha).
STRATEGIES: dict[str, tuple[str, str, str, int | None]] = {
    "random": ("random", "none", "accuracy", None),
    "tpe": ("optuna", "none", "accuracy", None),
    # the old settings: grace period 1, rungs rank by accuracy
    "random+asha-g1": ("random", "asha", "accuracy", 1),
    "tpe+asha-g1": ("optuna", "asha", "accuracy", 1),
    "tpe+moasha-g1": ("optuna", "moasha", "accuracy", 1),
    # the new defaults: --rung-metric auto, warm-up-aware grace period
    "random+asha": ("random", "asha", "auto", None),
    "tpe+asha": ("optuna", "asha", "auto", None),
    "random+moasha": ("random", "moasha", "auto", None),
    "tpe+moasha": ("optuna", "moasha", "auto", None),
    # more variants, run on request (--strategies)
    "random+asha-tse-g1": ("random", "asha", "tse", 1),
    "tpe+asha-tse-g1": ("optuna", "asha", "tse", 1),
    "tpe+moasha-tse-g1": ("optuna", "moasha", "tse", 1),
    "tpe+asha-tse": ("optuna", "asha", "tse", None),
    # TPE whose start-up trials are a zero-cost prior (prior_points): bench only, measured here
    "tpe+prior": (PRIOR_SEARCH, "none", "accuracy", None),
}
DEFAULT_STRATEGIES = ("random", "tpe", "random+asha-g1", "tpe+asha-g1", "tpe+moasha-g1", "random+asha", "tpe+asha",
                      "random+moasha", "tpe+moasha")
TABLE_BUDGETS = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of the record's total compute
GRID = np.linspace(0.0, 1.0, 201)  # the curves' budget grid (fractions of total compute)
OBJECTIVES = "val_acc:max,params:min"
TARGET = 0.95  # of the true front's hypervolume
SWEEP_SIZES = (32, 64, 128)  # trial counts at which a sweep's compute and hypervolume are kept
BASELINE_TRIALS = "64"  # "random's final": a 64-trial random sweep, the replayed-sweep size
BOOTSTRAP = 2000  # resamples of the seeds for the IQM's 95% interval
DEFAULT_SEEDS = 30
# --reuse of a study written before strategies carried their grace period (bench/results/rung-metric:
# meta "grace_period" 1, names without it): its names, as they are called here
OLD_NAMES_AT_GRACE_1 = {"random+asha": "random+asha-g1", "tpe+asha": "tpe+asha-g1", "tpe+moasha": "tpe+moasha-g1",
                        "random+asha-tse": "random+asha-tse-g1", "tpe+asha-tse": "tpe+asha-tse-g1",
                        "tpe+moasha-tse": "tpe+moasha-tse-g1"}


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


def run_one(args: tuple[str, str, int, int, int | None]) -> dict:
    """One simulated sweep: its hypervolume (fraction of the true front's) on GRID. In a worker process.

    ``args``: record, strategy, seed, workers, and a grace period that overrides the strategy's (or None)."""
    record_path, strategy, seed, workers, grace_override = args
    warnings.filterwarnings("ignore")
    from reports.hypervolume import hypervolume
    from sweep.simulator import make_simulation

    record, space, objectives, reference, maximize, true_hv = loaded(record_path)
    total = record.total_compute()
    search, scheduler, rung_metric, grace = STRATEGIES[strategy]
    if grace_override is not None and scheduler != "none":
        grace = grace_override
    started = time.perf_counter()
    if search == PRIOR_SEARCH:
        sim = prior_simulation(record, space, objectives, seed, workers, total)
    else:
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


def prior_points(space, seed: int, n: int, draws: int) -> list[dict]:
    """A zero-cost prior for TPE's start-up: ``draws`` random points of the space (seeded, distinct,
    within its budget) sorted by parameter count and cut into ``n`` equal-count bins; from each bin
    the largest network. Parameter count is the zero-cost signal no proxy beat on either record
    (docs/benchmarks.md, "Rung signals": larger ranks as more accurate, Spearman 0.85, and 0.38-0.44
    inside a params bin); binning keeps the start-up spread along the params axis of the front.
    Returns the points' flat Optuna parameters, for ``study.enqueue_trial``."""
    import random

    from search_spaces.params import EmptyRange
    from sweep.config.overrides import flatten
    from sweep.search.proposers import RecordingTrial

    rng, seen, found = random.Random(f"prior-{seed}"), set(), []
    for _ in range(draws * 50):
        if len(found) == draws:
            break
        recorder = RecordingTrial(rng)
        try:
            config = space.suggest(recorder)
        except EmptyRange:
            continue
        key = json.dumps(flatten(config), sort_keys=True, default=str)
        if key in seen or space.budget_violation(config) is not None:
            continue
        seen.add(key)
        found.append((space.cost(config).params, recorder.params))
    found.sort(key=lambda f: f[0])
    bins = np.array_split(np.arange(len(found)), n)
    return [found[int(b[-1])][1] for b in bins if b.size]


def prior_simulation(record, space, objectives, seed: int, workers: int, limit: float):
    """``tpe`` with its start-up trials (the sampler's n_startup_trials) enqueued from prior_points."""
    from sweep.search.proposers import make_proposer
    from sweep.simulator import simulate_sweep
    from sweep.tune.schedulers import make_scheduler
    from sweep.tune.searcher import ResNetXSearcher

    proposer = make_proposer("optuna", space, objectives, seed, 100_000)
    startup = proposer.study.sampler._n_startup_trials  # type: ignore[attr-defined]
    for params in prior_points(space, seed, startup, PRIOR_DRAWS * startup):
        proposer.study.enqueue_trial(params)  # type: ignore[attr-defined]
    searcher = ResNetXSearcher(space, proposer, objectives, seed)
    return simulate_sweep(record, searcher, make_scheduler("none", objectives, None), num_samples=100_000,
                          workers=workers, compute_limit=limit, primary_replicate=True)


def reference_point(space, objectives) -> list[float]:
    fixed = space.reference_point(objectives)
    if fixed is None:
        raise SystemExit(f"space {space.name} has no fixed hypervolume reference for {OBJECTIVES}")
    return fixed[0]


def strategy_settings(space, strategy: str, grace_override: int | None = None) -> dict:
    """What a strategy runs, its defaults resolved as the sweep resolves them (for the tables)."""
    import random

    from sweep.config.experiment import ExperimentConfig
    from sweep.tune.schedulers import resolved_grace_period, resolved_rung_metric

    search, scheduler, rung_metric, grace = STRATEGIES[strategy]
    out: dict = {"search": search, "scheduler": scheduler}
    if search == PRIOR_SEARCH:
        out["prior"] = (f"n_startup points: the largest by params in each of n_startup equal-count bins of "
                        f"{PRIOR_DRAWS} x n_startup random draws")
    if scheduler != "none":
        warmup = ExperimentConfig(**space.sample(random.Random(0))).train.warmup_epochs
        given = grace_override if grace_override is not None else grace
        out.update(rung_metric=rung_metric, rung_metric_resolved=resolved_rung_metric(scheduler, rung_metric),
                   grace_period=given, grace_period_resolved=resolved_grace_period(given, warmup),
                   warmup_epochs=warmup)
    return out


def quartiles(values) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(q1), float(median), float(q3)


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle half (scipy's trim_mean, 25% cut at each end)."""
    return np.asarray(stats.trim_mean(values, 0.25, axis=axis))


def iqm_with_ci(curves: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM over seeds (axis 0) at every budget, and its percentile-bootstrap 95% interval: the seeds
    resampled with replacement ``BOOTSTRAP`` times (numpy seed ``seed``)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(curves), size=(BOOTSTRAP, len(curves)))
    boot = iqm(curves[picks], axis=1)  # (BOOTSTRAP, budgets)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return iqm(curves, axis=0), low, high


def first_budget(curve: np.ndarray, level: float) -> float | None:
    """The smallest budget (fraction of total compute) at which ``curve`` reaches ``level``."""
    hits = np.nonzero(curve >= level - 1e-12)[0]
    return float(GRID[hits[0]]) if hits.size else None


def summarise(runs: list[dict], which: str = "curve") -> dict:
    """Medians, IQRs, IQMs with 95% intervals per strategy and budget; compute to reach the target; the
    issue's three targets.

    ``which``: ``curve`` (finished trials only, what a sweep's report ranks) or ``curve_all`` (every
    trial at its last reported epoch, stopped ones included, as Syne Tune's plots count them)."""
    by = {s: np.array([r[which] for r in runs if r["strategy"] == s]) for s in STRATEGIES}
    by = {s: c for s, c in by.items() if c.size}
    medians = {s: np.median(c, axis=0) for s, c in by.items()}
    iqms = {s: iqm_with_ci(c) for s, c in by.items()}
    q1s = {s: np.percentile(c, 25, axis=0) for s, c in by.items()}
    q3s = {s: np.percentile(c, 75, axis=0) for s, c in by.items()}
    baseline = [r["after_trials"].get(BASELINE_TRIALS) for r in runs if r["strategy"] == "random"]
    baseline = [b for b in baseline if b]
    table = {}
    for s, curves in by.items():
        at, at_iqm = {}, {}
        for b in TABLE_BUDGETS:
            i = int(np.argmin(np.abs(GRID - b)))
            at[str(b)] = quartiles(curves[:, i])
            at_iqm[str(b)] = tuple(float(x[i]) for x in iqms[s])  # (iqm, ci low, ci high)
        per_seed = [first_budget(c, TARGET) for c in curves]
        reached = [x for x in per_seed if x is not None]
        after = {}
        for n in SWEEP_SIZES:
            got = [r["after_trials"][str(n)] for r in runs if r["strategy"] == s and str(n) in r["after_trials"]]
            if len(got) == len(curves):  # every seed ran that many trials
                after[str(n)] = {k: statistics.median(g[k] for g in got) for k in ("compute", "hypervolume")}
        iqm_curve, low, high = iqms[s]
        table[s] = {"at_budget": at, "at_budget_iqm": at_iqm, "after_trials": after,
                    "median_curve_reaches_target_at": first_budget(medians[s], TARGET),
                    "iqm_curve_reaches_target_at": first_budget(iqm_curve, TARGET),
                    # the budgets at which the IQM's interval's ends reach the target: an interval for that budget
                    "iqm_reaches_target_ci": (first_budget(high, TARGET), first_budget(low, TARGET)),
                    "seeds_reaching_target": len(reached), "seeds": len(curves),
                    "median_budget_of_seeds_reaching": statistics.median(reached) if reached else None,
                    "median_final": float(medians[s][-1]), "iqm_final": float(iqm_curve[-1])}
    random_final = None
    if baseline:
        random_final = (statistics.median(b["hypervolume"] for b in baseline),
                        statistics.median(b["compute"] for b in baseline))
    curves_out = {s: {"median": medians[s].tolist(), "q1": q1s[s].tolist(), "q3": q3s[s].tolist(),
                      "iqm": iqms[s][0].tolist(), "iqm_low": iqms[s][1].tolist(), "iqm_high": iqms[s][2].tolist()}
                  for s in by}
    return {"table": table, "targets": targets(medians, iqms, q1s, q3s, random_final), "curves": curves_out}


def targets(medians: dict[str, np.ndarray], iqms: dict[str, tuple], q1s: dict[str, np.ndarray],
            q3s: dict[str, np.ndarray], random_final: tuple[float, float] | None) -> dict:
    """The targets of the benchmark issue (19), each with the numbers that decide it, for every strategy:

    - ``three_x``: its median curve reaches 95% of the true front with at most a third of the compute
      random's median needs for it (and the same for the IQM curves);
    - ``never_below_random``: from 10% of the compute, its median is never below random's median by
      more than random's interquartile range at that budget;
    - ``<tpe>:ge_random_from_25pct`` (``tpe``, ``tpe+prior``): its median >= random's at every budget from 25%
      (and the IQMs).

    ``random_final``: (median hypervolume, median compute) of a 64-trial random sweep, kept for the
    older "reaches random's final with half its compute" comparison."""
    out: dict[str, dict] = {}
    if "random" not in medians:
        return out
    random_at = first_budget(medians["random"], TARGET)
    random_iqm_at = first_budget(iqms["random"][0], TARGET)
    from_tenth = GRID >= 0.1 - 1e-12
    from_quarter = GRID >= 0.25 - 1e-12
    iqr = (q3s["random"] - q1s["random"])[from_tenth]
    for s in medians:
        if s == "random":
            continue
        at, at_iqm = first_budget(medians[s], TARGET), first_budget(iqms[s][0], TARGET)
        ratio = at / random_at if at is not None and random_at else None
        ratio_iqm = at_iqm / random_iqm_at if at_iqm is not None and random_iqm_at else None
        out[f"{s}:three_x"] = {"met": ratio is not None and ratio <= 1 / 3 + 1e-12,
                               "budget": at, "random_budget": random_at, "budget_over_random": ratio,
                               "iqm_budget": at_iqm, "random_iqm_budget": random_iqm_at,
                               "iqm_budget_over_random": ratio_iqm}
        margin = (medians[s] - medians["random"])[from_tenth] + iqr  # >= 0: within random's IQR below it
        worst = int(np.argmin(margin))
        gap = (medians[s] - medians["random"])[from_tenth]
        out[f"{s}:never_below_random"] = {"met": bool((margin >= -1e-12).all()), "worst_margin": float(margin[worst]),
                                          "worst_at_budget": float(GRID[from_tenth][worst]),
                                          "gap_there": float(gap[worst]), "random_iqr_there": float(iqr[worst]),
                                          "share_of_budgets_ok": float(np.mean(margin >= -1e-12))}
        if random_final is not None and s != "tpe":
            final, final_at = random_final
            budget = first_budget(medians[s], final)
            out[f"{s}:reaches_random_64_trial_hv"] = {
                "random_hv": final, "random_budget": final_at, "budget": budget,
                "budget_over_random": budget / final_at if budget is not None else None,
                "met": budget is not None and budget <= 0.5 * final_at}
    for s in (name for name in ("tpe", "tpe+prior") if name in medians):  # TPE "with whatever prior you add"
        gap = medians[s][from_quarter] - medians["random"][from_quarter]
        gap_iqm = iqms[s][0][from_quarter] - iqms["random"][0][from_quarter]
        worst, worst_iqm = int(np.argmin(gap)), int(np.argmin(gap_iqm))
        out[f"{s}:ge_random_from_25pct"] = {"met": bool((gap >= 0).all()), "worst_gap": float(gap[worst]),
                                            "worst_at_budget": float(GRID[from_quarter][worst]),
                                            "share_of_budgets_ge": float(np.mean(gap >= 0)),
                                            "iqm_met": bool((gap_iqm >= 0).all()),
                                            "iqm_worst_gap": float(gap_iqm[worst_iqm]),
                                            "iqm_worst_at_budget": float(GRID[from_quarter][worst_iqm]),
                                            "iqm_share_of_budgets_ge": float(np.mean(gap_iqm >= 0))}
    return out


def plot(summary: dict, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5), dpi=110)
    axes = fig.subplots(1, 2, sharey=True)
    for s, c in summary["curves"].items():
        line, = axes[0].plot(GRID * 100, c["median"], label=s, linestyle="--" if s.endswith("-g1") else "-")
        axes[0].fill_between(GRID * 100, c["q1"], c["q3"], color=line.get_color(), alpha=0.12)
        axes[1].plot(GRID * 100, c["iqm"], label=s, color=line.get_color(), linestyle=line.get_linestyle())
        axes[1].fill_between(GRID * 100, c["iqm_low"], c["iqm_high"], color=line.get_color(), alpha=0.12)
    for ax, what in zip(axes, ("median and interquartile range", "IQM and bootstrap 95% interval")):
        ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("compute spent (% of training every network of the record once)")
        ax.set_ylim(0.7, 1.005)
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
        ax.set_title(f"{title}: {what}", fontsize=10)
    axes[0].set_ylabel("hypervolume / true front's (val_acc:max, params:min)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _pct(x: float | None) -> str:
    return f"{x * 100:.1f}%" if x is not None else "never"


def render(summary: dict, meta: dict) -> str:
    lines = [f"record {meta['record']} ({meta['networks']} networks, total compute {meta['total_compute_s']:,.0f} s); "
             f"{meta['seeds']} seeds, {meta['workers']} workers, reference {meta['reference']}", "",
             "strategies: " + "; ".join(
                 f"{s}: " + ", ".join(f"{k} {v}" for k, v in st.items()) for s, st in meta["strategies"].items()),
             "", "median [interquartile range] over seeds:", "",
             "| strategy | " + " | ".join(f"{int(b * 100)}% compute" for b in TABLE_BUDGETS)
             + f" | median reaches {int(TARGET * 100)}% at | seeds reaching |",
             "|---" * (len(TABLE_BUDGETS) + 3) + "|"]
    for s, row in summary["table"].items():
        cells = [f"{m:.3f} [{q1:.3f}, {q3:.3f}]" for q1, m, q3 in (row["at_budget"][str(b)] for b in TABLE_BUDGETS)]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {_pct(row['median_curve_reaches_target_at'])}"
                     f" | {row['seeds_reaching_target']}/{row['seeds']} |")
    lines += ["", "interquartile mean [bootstrap 95% interval] over seeds:", "",
              "| strategy | " + " | ".join(f"{int(b * 100)}% compute" for b in TABLE_BUDGETS)
              + f" | IQM reaches {int(TARGET * 100)}% at [95% interval] |",
              "|---" * (len(TABLE_BUDGETS) + 2) + "|"]
    for s, row in summary["table"].items():
        cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row["at_budget_iqm"][str(b)] for b in TABLE_BUDGETS)]
        early, late = row["iqm_reaches_target_ci"]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {_pct(row['iqm_curve_reaches_target_at'])} "
                     f"[{_pct(early)}, {_pct(late)}] |")
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


def reused_runs(path: str, record: str, seeds: int, workers: int) -> tuple[list[dict], dict]:
    """The runs of an earlier study of the same record, seeds and workers, its strategies renamed to
    this script's names (OLD_NAMES_AT_GRACE_1 for a study at grace period 1 written before strategies
    carried their grace period)."""
    old = json.loads(Path(path).read_text())
    meta = old["meta"]
    if (Path(meta["record"]).name, meta["workers"]) != (Path(record).name, workers) or meta["seeds"] < seeds:
        raise SystemExit(f"--reuse {path}: record {meta['record']}, {meta['seeds']} seeds, {meta['workers']} workers; "
                         f"this study: {record}, {seeds} seeds, {workers} workers")
    renames = OLD_NAMES_AT_GRACE_1 if meta.get("grace_period") == 1 and "strategies" not in meta else {}
    if "strategies" not in meta and meta.get("grace_period") not in (1, None):
        raise SystemExit(f"--reuse {path}: a study at grace period {meta['grace_period']} has no names here")
    runs = [{**r, "strategy": renames.get(r["strategy"], r["strategy"])} for r in old["runs"] if r["seed"] < seeds]
    return [r for r in runs if r["strategy"] in STRATEGIES], meta


def combined(runs: list[dict], reused: list[dict]) -> tuple[list[dict], dict]:
    """``runs`` and the reused runs of every (strategy, seed) not in ``runs``; the runs both made must have
    the same curve (the same code path, deterministic in simulated time), else it stops."""
    mine = {(r["strategy"], r["seed"]): r for r in runs}
    both = [(k, r) for r in reused if (k := (r["strategy"], r["seed"])) in mine]
    differ = [k for k, r in both if not np.allclose(r["curve"], mine[k]["curve"], rtol=0, atol=1e-12)]
    if differ:
        raise SystemExit(f"--reuse: {len(differ)} of {len(both)} runs both studies made differ, e.g. {differ[:3]}")
    extra = [r for r in reused if (r["strategy"], r["seed"]) not in mine]
    check = {"runs_in_both": len(both), "identical": len(both),
             "strategies_reused": sorted({r["strategy"] for r in extra}), "runs_reused": len(extra)}
    return runs + extra, check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", default="bench/records/fmnist-bench.csv")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES), help=f"among {', '.join(STRATEGIES)}")
    parser.add_argument("--workers", type=int, default=2, help="simulated trials at a time (the recording's)")
    parser.add_argument("--grace-period", type=int, default=None,
                        help="override every early-stopping strategy's grace period (default: each strategy's own)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--seed-list", help="simulate these sweep seeds (comma-separated) instead of 0..--seeds-1, "
                        "e.g. another process's share of a study; --runs puts the shares together")
    parser.add_argument("--runs", action="append", help="take the runs from this study's JSON (or runs.partial.json) "
                        "instead of simulating them; repeatable: the runs of several, each (strategy, seed) once")
    parser.add_argument("--keep", help="the strategies to report (comma-separated; default: every one run or reused)")
    parser.add_argument("--reuse", help="add the runs of every (strategy, seed) not run here from an earlier study's "
                        "JSON (same record, seeds and workers); the runs both made must agree")
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
    started = time.perf_counter()
    if args.runs:
        runs, wall, seen = [], 0.0, set()
        for path in args.runs:
            earlier = json.loads(Path(path).read_text())
            wall = max(wall, earlier["meta"]["wall_s"])  # the shares ran side by side
            fresh = [r for r in earlier["runs"] if (r["strategy"], r["seed"]) not in seen]
            seen.update((r["strategy"], r["seed"]) for r in fresh)
            runs += fresh
        strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    else:
        # seed by seed, so that the runs written so far (runs.partial.json, every few runs) are whole seeds
        seeds = [int(x) for x in args.seed_list.split(",")] if args.seed_list else range(args.seeds)
        jobs = [(args.record, s, seed, args.workers, args.grace_period) for seed in seeds for s in strategies]
        partial = Path(args.out) / "runs.partial.json"
        partial.parent.mkdir(parents=True, exist_ok=True)
        runs = []
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for run in pool.map(run_one, jobs):
                runs.append(run)
                if len(runs) % len(strategies) == 0:
                    partial.write_text(json.dumps({"meta": {"wall_s": time.perf_counter() - started}, "runs": runs}))
        wall = time.perf_counter() - started
        partial.unlink()
    reuse = None
    if args.reuse:
        reused, old_meta = reused_runs(args.reuse, args.record, args.seeds, args.workers)
        runs, reuse = combined(runs, reused)
        reuse.update(path=args.reuse, wall_s=old_meta["wall_s"])
    if args.keep:
        runs = [r for r in runs if r["strategy"] in args.keep.split(",")]
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in runs)]
    runs.sort(key=lambda r: (list(STRATEGIES).index(r["strategy"]), r["seed"]))
    meta = {"record": args.record, "networks": len(record.keys), "total_compute_s": record.total_compute(),
            "seeds": args.seeds, "workers": args.workers, "grace_period_override": args.grace_period,
            "strategies": {s: strategy_settings(space, s, args.grace_period) for s in strategies},
            "reference": reference_point(space, parse_objectives(OBJECTIVES)), "objectives": OBJECTIVES,
            "bootstrap": BOOTSTRAP, "machine": platform.processor() or platform.machine(),
            "jobs": None if args.runs else args.jobs,
            "wall_s": wall, "runs_from": args.runs, "reuse": reuse, "record_provenance": record.provenance}
    summary, summary_all = summarise(runs), summarise(runs, "curve_all")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_strategies.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                            "summary_all_results": summary_all, "runs": runs}))
    plot(summary, out / "search_strategies.png", record.space)
    text = ["finished trials only (what a sweep's report ranks):", render(summary, meta),
            "\nevery trial at its last reported epoch (stopped ones included):", render(summary_all, meta)]
    finished = {s: statistics.median(r["finished"] for r in runs if r["strategy"] == s) for s in strategies}
    trials = {s: statistics.median(r["trials"] for r in runs if r["strategy"] == s) for s in strategies}
    text.append("\nmedian trials (finished): " + ", ".join(f"{s} {trials[s]:.0f} ({finished[s]:.0f})"
                                                          for s in strategies))
    per = {s: statistics.mean(r["seconds"] for r in runs if r["strategy"] == s) for s in strategies}
    text.append("\nseconds per simulated sweep: " + ", ".join(f"{s} {v:.1f}" for s, v in per.items())
                + (f"; wall {wall:.0f} s (the longest of the studies in --runs)" if args.runs
                   else f"; wall {wall:.0f} s with {args.jobs} processes")
                + (f"; reused from {reuse['path']}: {', '.join(reuse['strategies_reused'])} ({reuse['runs_in_both']} "
                   f"runs both made, all identical)" if reuse else ""))
    (out / "search_strategies.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"wrote {out / 'search_strategies.json'}, .md and .png")


if __name__ == "__main__":
    main()
