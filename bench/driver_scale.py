"""Scale of the driver: what a suggestion, a rung decision and a trial's MLflow writes cost after thousands of trials.

Everything a sweep's driver does per trial, measured by direct calls on the objects a sweep hands
to Ray Tune (no training, no Ray), after 100, 1,000, 5,000 and 10,000 finished trials:

- **suggestions**: ``SearchCore.suggest`` (keys, budget, de-duplication, the proposer's ask) with
  64 trials running, each completed (``on_trial_complete``: the proposer's tell) when a new one
  is asked for. Proposers: random; multi-objective TPE over 2 and 3 objectives
  (val_acc, params[, latency_ms]) on ``fmnist-pareto`` without its budget; TPE with the budget
  (over-budget points are constraint violations, and ``suggest`` asks again). Each TPE one
  unbounded and with ``history`` 1,000 (sweep.search.proposers.OptunaProposer). The history is
  filled with Optuna's random sampler (seconds instead of an hour: TPE's cost at an ask depends
  on how many trials it reads, not on how they were proposed), then TPE answers the measured
  asks. Results are synthetic (val_acc from the network's size and its hash). Memory: the
  growth of the process's resident set since the proposer was built (one process per proposer).
- **rung decisions**: ``MOASHARungs.decide`` with its state file, on one rung holding all the
  results (2 and 3 objectives that trade off as in a real rung: accuracy and latency rise with
  size), and the whole-rung ``top_k`` it replaced (``promotes``) where it still fits in memory.
- **MLflow**: a trial's writes as ``MlflowTrialCallback`` makes them (run with tags, params and
  config.yaml; 10 epochs of metrics, each flushed; final metrics, tags, end) into SQLite, an
  ``mlflow server`` on SQLite, and PostgreSQL directly and through a server when
  ``tests/support/postgres.py`` can start one (Debian's postgresql package; its throwaway cluster
  runs with fsync off, so those are lower bounds).
  The same writes queued (``sweep.tracking.writer``, as the callback makes them since the writes
  moved off Tune's loop): what the driver's calls cost while the writer thread sends the previous
  ones, with reports arriving at the rate 64 slots of 60 s trials make them, and the writer's
  busy share at that rate (under 100%: it keeps up).
- **driver overhead**: a serial driver simulated for 64 slots of 60 s trials (10 epochs), each
  report waiting for the driver's work on it (MLflow writes, a rung decision at epochs 1, 2, 4, 8;
  at the end the close, the completion and the next suggestion), with costs drawn from the
  measurements at 10,000 trials: the share of slot time spent waiting.
- **search quality of the bound** (``--quality``): unbounded TPE against ``history`` 100 and
  200 on the record bench/records/fmnist-bench-2.csv (its sweeps reach ~1,000 study trials, so
  these windows bite as 1,000 does at 10,000), hypervolume at fractions of the record's compute;
  with ``--quality-objectives 3``, TPE over val_acc, params and latency_ms against windows of 40
  and 100 (as the 3-objective default of 400 and the 2-objective 1,000 bite at 10,000).

    .venv/bin/python bench/driver_scale.py --quality                # everything (~20 min on 2 cores)
    .venv/bin/python bench/driver_scale.py --sizes 100,1000 --no-mlflow   # a quick look
    .venv/bin/python bench/driver_scale.py --quality --quality-objectives 3 --proposers "" \
        --sizes 100 --decisions 10 --no-mlflow                            # only the 3-objective quality
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sweep.search.proposers import TPE_HISTORY
from sweep.search.proposers import TPE_HISTORY_MANY_OBJECTIVES as HISTORY_3OBJ

ROOT = Path(__file__).resolve().parents[1]
SIZES = (100, 1_000, 5_000, 10_000)
CONCURRENT = 64
OBJ2, OBJ3 = "val_acc:max,params:min", "val_acc:max,params:min,latency_ms:min"
HISTORY = TPE_HISTORY
PROPOSERS = {  # name -> (search, objectives, with the space's budget, history)
    "random": ("random", OBJ2, False, None),
    "tpe-2obj": ("optuna", OBJ2, False, None),
    f"tpe-2obj history {HISTORY}": ("optuna", OBJ2, False, HISTORY),
    "tpe-3obj": ("optuna", OBJ3, False, None),
    f"tpe-3obj history {HISTORY}": ("optuna", OBJ3, False, HISTORY),
    "tpe-budget": ("optuna", OBJ2, True, None),
    f"tpe-budget history {HISTORY}": ("optuna", OBJ2, True, HISTORY),
    f"tpe-3obj history {HISTORY_3OBJ}": ("optuna", OBJ3, False, HISTORY_3OBJ),  # the 3-objective default
}
DEFAULT_PROPOSERS = list(PROPOSERS)
# --quality: (history, explore_after) arms by objective count. The record's TPE sweeps reach ~1,000
# study trials, so a window of w trials bites there as one of 10 w does at 10,000
QUALITY_ARMS = {2: [(None, None), (200, None), (100, None), (200, 3), (100, 3)],
                3: [(None, None), (HISTORY_3OBJ // 10, None), (HISTORY // 10, None)]}
TARGET_SUGGEST_S, TARGET_DECISION_S, TARGET_OVERHEAD = 0.050, 0.005, 0.01
EPOCHS, TRIAL_S, RUNG_EPOCHS = 10, 60.0, (1, 2, 4, 8)


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_average() -> list[str]:
    """The 1, 5 and 15 minute load averages (``uptime``'s): the machine's other work during a run."""
    with open("/proc/loadavg") as handle:
        return handle.read().split()[:3]


def summary(seconds: list[float]) -> dict:
    return {"median_ms": 1e3 * statistics.median(seconds), "p95_ms": 1e3 * float(np.percentile(seconds, 95)),
            "max_ms": 1e3 * max(seconds), "n": len(seconds)}


def space_for(budget: bool):
    """fmnist-pareto (247,296 networks), with its parameter and FLOP budget or without."""
    import yaml

    from search_spaces import load_space

    if budget:
        return load_space("fmnist-pareto")
    spec = yaml.safe_load((ROOT / "search_spaces" / "builtin" / "fmnist-pareto.yaml").read_text())
    spec.pop("budget")
    spec["name"] = "fmnist-pareto-no-budget"
    path = Path(tempfile.mkdtemp(prefix="driver-scale-")) / "space.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_space(str(path))


def synthetic_result(config: dict, space) -> dict:
    """A finished trial's last result: val_acc rising with size plus the network's own noise."""
    import zlib

    params = _params(config)
    noise = zlib.crc32(config["config_hash"].encode()) / 2**32
    return {"val_acc": 0.55 + 0.06 * np.log10(params) + 0.05 * noise, "params": params,
            "latency_ms": 0.2 + params / 1e5 + 0.1 * (1 - noise), "epoch": 5, "status": "finished",
            "config_hash": config["config_hash"]}


def _params(config: dict) -> int:
    from search_spaces.cost import config_cost
    from search_spaces.walk import build_model_config

    return config_cost(build_model_config(dict(config["experiment"]["model"]))).params


def proposer_spec(name: str) -> tuple[str, str, bool, int | None]:
    """(search, objectives, with the budget, history) of a ``--proposers`` name: one of PROPOSERS, or
    one of its TPE names with another bound (``tpe-3obj history 400``), for side-by-side runs."""
    if name in PROPOSERS:
        return PROPOSERS[name]
    base, _, bound = name.rpartition(" history ")
    if base in PROPOSERS and bound.isdigit() and PROPOSERS[base][0] == "optuna":
        return (*PROPOSERS[base][:3], int(bound))
    raise SystemExit(f"--proposers: got {name!r}; must be one of {', '.join(PROPOSERS)}, "
                     "or a TPE one with another ' history N'")


def measure_proposer(args: tuple[str, tuple[int, ...], int]) -> dict:
    """Suggestion and completion latency, and memory, of one proposer at each size (in its own process)."""
    name, sizes, per_size = args
    warnings.filterwarnings("ignore")
    import optuna

    from reports.pareto import parse_objectives
    from sweep.search.core import SearchCore
    from sweep.search.proposers import OptunaProposer, RandomProposer
    from sweep.training.seeding import derive_seed

    search, objective_text, budget, history = proposer_spec(name)
    objectives, space = parse_objectives(objective_text), space_for(budget)
    before = rss_bytes()
    proposer = (OptunaProposer(space, objectives, 0, 100_000, history=history) if search == "optuna"
                else RandomProposer(space, 0))
    core = SearchCore(space, proposer, objectives, 0)
    core.set_max_concurrency(CONCURRENT)
    live: deque = deque()
    counter, out = 0, {"name": name, "sizes": {}}

    def step(timed: bool) -> tuple[float, float]:
        nonlocal counter
        done = 0.0
        if len(live) >= CONCURRENT:
            trial_id, config = live.popleft()
            started = time.perf_counter()
            core.on_trial_complete(trial_id, result=synthetic_result(config, space))
            done = time.perf_counter() - started
        if search == "optuna" and not timed:
            proposer.study.sampler = optuna.samplers.RandomSampler(seed=counter)
        counter += 1
        started = time.perf_counter()
        config = core.suggest(f"t{counter:06d}")
        asked = time.perf_counter() - started
        if not isinstance(config, dict):
            raise RuntimeError(f"{name}: suggest returned {config!r} ({core.stats.stop_reason})")
        live.append((f"t{counter:06d}", config))
        return asked, done

    for size in sizes:
        while counter - len(live) < size:
            step(False)
        if search == "optuna":  # a fresh TPE sampler on the filled study (its search-space cache starts empty)
            proposer.study.sampler = proposer._sampler(derive_seed(0, "bench", size))
        asks, tells, proposed = [], [], core.stats.proposed
        for _ in range(per_size):
            asked, told = step(True)
            asks.append(asked)
            tells.append(told)
        out["sizes"][str(size)] = {"suggest": summary(asks), "complete": summary(tells),
                                   "memory_mb": (rss_bytes() - before) / 2**20,
                                   "study_trials": len(proposer.study.trials) if search == "optuna" else None,
                                   "proposals": core.stats.proposed, "infeasible": core.stats.infeasible,
                                   "asks_per_suggestion": (core.stats.proposed - proposed) / per_size}
        print(f"  {name} at {size}: suggest {out['sizes'][str(size)]['suggest']['median_ms']:.1f} ms median",
              flush=True)
    return out


def rung_point(rng: random.Random, objectives: int) -> list[float]:
    size = rng.uniform(3, 5)  # log10 params; accuracy and latency rise with it, so fronts are large
    return [0.5 + 0.1 * size + rng.gauss(0, 0.02), 10**size, 0.1 * size + rng.gauss(0, 0.05)][:objectives]


def measure_rungs(args: tuple[int, tuple[int, ...], int]) -> dict:
    """MO-ASHA's decisions on one rung of n results, and the whole-rung top_k they replaced."""
    objectives, sizes, per_size = args
    from reports.pareto import LOG_SCALE_OBJECTIVES, parse_objectives
    from sweep.search.rungs import MOASHARungs, promotes

    objs = parse_objectives([OBJ2, OBJ3][objectives - 2])
    maximize, log_scale = [o.maximize for o in objs], [o.name in LOG_SCALE_OBJECTIVES for o in objs]
    rng = random.Random(objectives)
    folder = tempfile.mkdtemp(prefix="driver-scale-rungs-")
    before = rss_bytes()
    rungs = MOASHARungs(objs, 1, 2, state_path=os.path.join(folder, "moasha-rungs.json"))
    count, out = 0, {"objectives": objectives, "sizes": {}}
    for size in sizes:
        while count < size:
            rungs.decide(f"t{count}", 1, rung_point(rng, objectives), max_epochs=2)
            count += 1
        times = []
        for _ in range(per_size):
            point = rung_point(rng, objectives)
            started = time.perf_counter()
            rungs.decide(f"t{count}", 1, point, max_epochs=2)
            times.append(time.perf_counter() - started)
            count += 1
        row = {"decide": summary(times), "memory_mb": (rss_bytes() - before) / 2**20}
        if size <= 5_000:  # the earlier rule: top_k of the whole rung (an n x n x k comparison) per decision
            recorded = list(rungs.rungs[1].values())
            whole = []
            for _ in range(3 if size >= 5_000 else 10):
                started = time.perf_counter()
                promotes(recorded, rung_point(rng, objectives), maximize, 2, log_scale)
                whole.append(time.perf_counter() - started)
            row["whole_rung_top_k"] = summary(whole)
        out["sizes"][str(size)] = row
        print(f"  MO-ASHA {objectives} objectives at {size}: {row['decide']['median_ms']:.2f} ms median", flush=True)
    return out


def log_one_trial(uri: str, experiment_id: str, parent: str, cfg, index: int) -> tuple[float, list[float], float]:
    """One trial's writes, as MlflowTrialCallback makes them: (open, each epoch, close) in seconds."""
    from reports import schema
    from sweep.tracking.store import open_config_run

    started = time.perf_counter()
    logger = open_config_run(uri, experiment_id, cfg, name=f"trial-{index}", role=schema.ROLE_TRIAL,
                             tags={schema.TAG_TRIAL_ID: f"t{index}"}, config_hash=f"{index:032x}",
                             parent_run_id=parent)
    opened = time.perf_counter() - started
    epochs = []
    for epoch in range(1, EPOCHS + 1):
        started = time.perf_counter()
        logger.log_metrics({k: 0.5 + 0.01 * epoch for k in schema.EPOCH_METRICS}, step=epoch)
        logger.flush()
        epochs.append(time.perf_counter() - started)
    started = time.perf_counter()
    logger.log_metrics({k: 1.0 for k in (*schema.FINAL_METRICS, schema.EPOCHS_METRIC)}, step=EPOCHS)
    logger.set_tags({schema.TAG_STATUS: schema.STATUS_FINISHED})
    logger.end("FINISHED")
    return opened, epochs, time.perf_counter() - started


def log_one_trial_queued(writer, uri: str, experiment_id: str, parent: str, cfg, index: int,
                         pace_s: float) -> tuple[float, list[float], float]:
    """The same writes queued to ``writer``: the driver's cost of each call, ``pace_s`` apart
    (the writer sends the previous ones meanwhile, so the calls pay for sharing the process)."""
    from reports import schema
    from sweep.tracking.store import open_config_run
    from sweep.tracking.writer import QueuedRunLogger

    started = time.perf_counter()
    logger = QueuedRunLogger(writer, lambda: open_config_run(
        uri, experiment_id, cfg, name=f"trial-{index}", role=schema.ROLE_TRIAL, tags={schema.TAG_TRIAL_ID: f"t{index}"},
        config_hash=f"{index:032x}", parent_run_id=parent))
    opened = time.perf_counter() - started
    epochs = []
    for epoch in range(1, EPOCHS + 1):
        time.sleep(pace_s)
        started = time.perf_counter()
        logger.log_metrics({k: 0.5 + 0.01 * epoch for k in schema.EPOCH_METRICS}, step=epoch)
        epochs.append(time.perf_counter() - started)
    time.sleep(pace_s)
    started = time.perf_counter()
    logger.log_metrics({k: 1.0 for k in (*schema.FINAL_METRICS, schema.EPOCHS_METRIC)}, step=EPOCHS)
    logger.set_tags({schema.TAG_STATUS: schema.STATUS_FINISHED})
    logger.end("FINISHED")
    return opened, epochs, time.perf_counter() - started


def measure_store(uri: str, trials: int, folder: Path, queued: bool = False) -> dict:
    from reports import schema
    from search_spaces import load_space
    from sweep.tracking.store import RunLogger, prepare_store
    from sweep.tune.callbacks import resolve_trial_config

    space = load_space("fmnist-pareto")
    cfg, _ = resolve_trial_config(space.sample(random.Random(0)))
    experiment_id = prepare_store(uri, "driver-scale", runs_folder=folder)
    parent = RunLogger.start(uri, experiment_id, name="sweep", tags={schema.TAG_ROLE: schema.ROLE_SWEEP})
    opens, epochs, closes, totals = [], [], [], []
    writer = None
    if queued:
        from sweep.tracking.writer import BackgroundWriter

        writer = BackgroundWriter()
    pace_s = TRIAL_S / EPOCHS / CONCURRENT  # a report every 94 ms: 64 slots of 10-epoch, 60 s trials
    for index in range(trials):
        started = time.perf_counter()
        if writer is None:
            opened, per_epoch, closed = log_one_trial(uri, experiment_id, parent.run_id, cfg, index)
        else:
            opened, per_epoch, closed = log_one_trial_queued(writer, uri, experiment_id, parent.run_id, cfg, index,
                                                             pace_s)
        totals.append(time.perf_counter() - started - (0.0 if writer is None else pace_s * (EPOCHS + 1)))
        opens.append(opened)
        epochs.extend(per_epoch)
        closes.append(closed)
    out: dict = {}
    if writer is not None:
        writer.close()
        out["writer_s_per_trial"] = writer.busy_s / trials
        out["writer_busy_share"] = writer.busy_s / trials * CONCURRENT / TRIAL_S  # at 64 slots of 60 s trials
    parent.end("FINISHED")
    return {"open": summary(opens), "epoch": summary(epochs), "close": summary(closes), "trial": summary(totals),
            **out, "samples": {"open": opens, "epoch": epochs, "close": closes}}


def measure_mlflow(trials: int) -> dict:
    """SQLite, a server on SQLite, and PostgreSQL directly and through a server (when one starts)."""
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    from sweep.config.paths import sqlite_uri

    out: dict = {}
    folder = Path(tempfile.mkdtemp(prefix="driver-scale-mlflow-"))
    out["sqlite"] = measure_store(sqlite_uri(folder / "direct"), trials, folder / "direct")
    print(f"  MLflow sqlite: {out['sqlite']['trial']['median_ms']:.0f} ms a trial", flush=True)
    out["sqlite, queued"] = measure_store(sqlite_uri(folder / "direct-q"), trials, folder / "direct-q", queued=True)
    try:
        from tests.support.postgres import mlflow_server
    except ImportError as exc:
        out["server (sqlite)"] = {"error": str(exc)}
        return out
    (folder / "server").mkdir()
    with mlflow_server(f"sqlite:///{folder / 'server' / 'mlflow.db'}", folder / "server" / "artifacts") as url:
        out["server (sqlite)"] = measure_store(url, trials, folder / "server")
        out["server (sqlite), queued"] = measure_store(url, trials, folder / "server", queued=True)
    print(f"  MLflow server on sqlite: {out['server (sqlite)']['trial']['median_ms']:.0f} ms a trial", flush=True)
    try:
        from tests.support.postgres import postgres_server

        with postgres_server() as pg:
            out["postgresql"] = measure_store(pg.create_database("direct"), trials, folder / "pg")
            out["postgresql, queued"] = measure_store(pg.create_database("direct_q"), trials, folder / "pg-q",
                                                      queued=True)
            print(f"  MLflow postgresql: {out['postgresql']['trial']['median_ms']:.0f} ms a trial", flush=True)
            with mlflow_server(pg.create_database("server"), folder / "pg-server" / "artifacts") as url:
                out["server (postgresql)"] = measure_store(url, trials, folder / "pg-server")
                out["server (postgresql), queued"] = measure_store(url, trials, folder / "pg-server", queued=True)
            print(f"  MLflow server on postgresql: {out['server (postgresql)']['trial']['median_ms']:.0f} ms a trial",
                  flush=True)
    except Exception as exc:  # no server binaries or driver here: said in the table, never hidden
        out.setdefault("postgresql", {"error": f"{type(exc).__name__}: {exc}"[:300]})
    return out


def driver_overhead(costs: dict[str, list[float]], slots: int = CONCURRENT, trial_s: float = TRIAL_S,
                    epochs: int = EPOCHS, trials: int = 3_000, seed: int = 0) -> dict:
    """A serial driver serving ``slots`` trials of ``epochs`` reports over ``trial_s`` seconds (simulated).

    Every report waits (its slot idles) until the driver has done its work on it, first come
    first served: each epoch, the MLflow writes and at RUNG_EPOCHS a rung decision; at the end the
    run's close, the searcher's completion, the next suggestion and the new run's open. Each
    cost is drawn from ``costs`` (measured samples, seconds). An epoch lasts ``trial_s / epochs``
    within +-10% (uniform): with identical epochs the reports of all slots would bunch into one
    convoy behind a trial's end and stay bunched, which real networks of different sizes do not.
    Ray Tune's function trainables do wait: ``report`` blocks until the driver asks for the next
    result (ray.train._internal.session, ``continue_lock``). Returns the waiting share of the
    slots' time."""
    import heapq

    rng = np.random.default_rng(seed)

    def draw(kind: str) -> float:
        samples = costs.get(kind) or [0.0]
        return float(samples[rng.integers(len(samples))])

    epoch_s = trial_s / epochs

    def epoch() -> float:
        return epoch_s * float(rng.uniform(0.9, 1.1))

    events = [(epoch_s * (1 + i / slots), i, 1) for i in range(slots)]  # (report time, slot, epoch); staggered
    heapq.heapify(events)
    free, waited, started, busy = 0.0, 0.0, slots, 0.0
    end = 0.0
    while events:
        at, slot, epoch_number = heapq.heappop(events)
        work = draw("log_epoch") + (draw("decide") if epoch_number in RUNG_EPOCHS else 0.0)
        last = epoch_number == epochs
        if last:
            work += draw("log_close") + draw("complete")
            if started < trials:
                work += draw("suggest") + draw("log_open")
        begin = max(at, free)
        free = begin + work
        busy += work
        waited += free - at
        end = max(end, free)
        if not last:
            heapq.heappush(events, (free + epoch(), slot, epoch_number + 1))
        elif started < trials:
            started += 1
            heapq.heappush(events, (free + epoch(), slot, 1))
    computed = trials * trial_s
    return {"waiting_share": waited / (waited + computed), "driver_busy": busy / end, "trials": trials}


def quality_reference(record, space, objectives) -> tuple[list[float], list[bool], float]:
    """The hypervolume reference, directions and the true front's hypervolume for 2 or 3 objectives.

    val_acc and params: the space's fixed reference; latency_ms (which the space does not fix):
    1.1 x the slowest network's in the record, so every recorded network counts."""
    from reports.hypervolume import hypervolume

    fixed = space.reference_point(objectives[:2])[0]
    final = record.final()
    reference = fixed + [1.1 * float(final[o.name].max()) for o in objectives[2:]]
    maximize = [o.maximize for o in objectives]
    names = [o.name for o in objectives]
    return reference, maximize, hypervolume(final[names].to_numpy(float), reference, maximize)


def quality_one(args: tuple[int | None, int, int | None, int]) -> dict:
    """One simulated TPE sweep on the record, unbounded or with a history bound: hypervolume fractions.

    ``explore_after``: misses in a row before a windowed study's searcher explores (None: the
    searcher's rule, sweep.search.proposers.EXPLORE_AFTER_WINDOWED; 3: the rule before it).
    ``n_objectives``: 2 (val_acc, params) or 3 (+ latency_ms), searched and measured alike."""
    history, seed, explore_after, n_objectives = args
    warnings.filterwarnings("ignore")
    if explore_after is not None:  # this worker process only
        import sweep.search.core

        sweep.search.core.EXPLORE_AFTER_WINDOWED = explore_after
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from search_strategies import TABLE_BUDGETS, loaded

    from reports.hypervolume import hypervolume
    from reports.pareto import parse_objectives
    from sweep.search.proposers import OptunaProposer
    from sweep.simulator import simulate_sweep
    from sweep.tune.schedulers import make_scheduler
    from sweep.tune.searcher import ResNetXSearcher

    record_path = str(ROOT / "bench" / "records" / "fmnist-bench-2.csv")
    record, space, objectives, reference, maximize, true_hv = loaded(record_path)
    if n_objectives == 3:
        objectives = parse_objectives(OBJ3)
        reference, maximize, true_hv = quality_reference(record, space, objectives)
    names = [o.name for o in objectives]
    total = record.total_compute()
    proposer = OptunaProposer(space, objectives, seed, 100_000, history=history)
    searcher = ResNetXSearcher(space, proposer, objectives, seed)
    started = time.perf_counter()
    sim = simulate_sweep(record, searcher, make_scheduler("none", objectives, None, 1, 2, rung_metric="accuracy"),
                         num_samples=100_000, workers=2, compute_limit=total, primary_replicate=True)
    curve = {}
    for budget in TABLE_BUDGETS:
        points = [[t.last[n] for n in names] for t in sim.finished() if t.compute_at_end <= budget * total]
        curve[str(budget)] = hypervolume(points, reference, maximize) / true_hv if points else 0.0
    return {"history": history, "seed": seed, "explore_after": explore_after, "objectives": names,
            "hv": curve, "trials": len(sim.trials),
            "study_trials": proposer.offset + len(proposer.study.trials), "windows": proposer.windows,
            "seconds": time.perf_counter() - started}


def render(results: dict) -> str:
    lines = [f"machine: {results['machine']}; load before/after: {results['load']}", ""]
    lines += ["| proposer | " + " | ".join(f"{s:,} trials: median / p95 ms" for s in results["sizes"])
              + " | MB at the largest |", "|---" * (len(results["sizes"]) + 2) + "|"]
    for row in results["proposers"]:
        cells = [f"{row['sizes'][str(s)]['suggest']['median_ms']:.1f} / {row['sizes'][str(s)]['suggest']['p95_ms']:.1f}"
                 for s in results["sizes"]]
        lines.append(f"| {row['name']} | " + " | ".join(cells)
                     + f" | {row['sizes'][str(results['sizes'][-1])]['memory_mb']:.0f} |")
    lines += ["", "at the largest size: proposals per suggestion (duplicates and over-budget points are asked "
              "again), and the completion (the proposer's tell; a history bound's fresh study falls in one of "
              "them), median / p95 / max ms:"]
    for row in results["proposers"]:
        at = row["sizes"][str(results["sizes"][-1])]
        last = at["complete"]
        lines.append(f"- {row['name']}: {at['asks_per_suggestion']:.1f} proposals; completion "
                     f"{last['median_ms']:.2f} / {last['p95_ms']:.2f} / {last['max_ms']:.1f}")
    lines += ["", "| MO-ASHA rung decision | " + " | ".join(f"{s:,} results: median / p95 ms" for s in results["sizes"])
              + " | MB at the largest |", "|---" * (len(results["sizes"]) + 2) + "|"]
    for row in results["rungs"]:
        cells = [f"{row['sizes'][str(s)]['decide']['median_ms']:.2f} / {row['sizes'][str(s)]['decide']['p95_ms']:.2f}"
                 for s in results["sizes"]]
        lines.append(f"| {row['objectives']} objectives | " + " | ".join(cells)
                     + f" | {row['sizes'][str(results['sizes'][-1])]['memory_mb']:.1f} |")
        sizes = [row["sizes"][str(s)] for s in results["sizes"]]
        old = [f"{r['whole_rung_top_k']['median_ms']:.1f}" if "whole_rung_top_k" in r else "-" for r in sizes]
        lines.append(f"| {row['objectives']} objectives, whole-rung top_k (before) | " + " | ".join(old) + " | |")
    if results.get("mlflow"):
        lines += ["", "| MLflow store | open a run (ms) | an epoch (ms) | close (ms) | a trial of 10 epochs (ms) |",
                  "|---|---|---|---|---|"]
        for store, row in results["mlflow"].items():
            if "error" in row:
                lines.append(f"| {store} | not measured: {row['error']} | | | |")
                continue
            writer = (f"; writer busy {100 * row['writer_busy_share']:.0f}% at {CONCURRENT} slots"
                      if "writer_busy_share" in row else "")
            lines.append(f"| {store} | {row['open']['median_ms']:.2f} | {row['epoch']['median_ms']:.2f} | "
                         f"{row['close']['median_ms']:.2f} | {row['trial']['median_ms']:.1f} "
                         f"(p95 {row['trial']['p95_ms']:.1f}){writer} |")
    if results.get("overhead"):
        lines += ["", f"driver overhead, {CONCURRENT} slots of {TRIAL_S:.0f} s trials ({EPOCHS} epochs), "
                  "share of slot time spent waiting for the driver:"]
        for label, row in results["overhead"].items():
            lines.append(f"- {label}: {100 * row['waiting_share']:.3f}% (driver busy {100 * row['driver_busy']:.1f}%)")
    if results.get("quality"):
        budgets = results["quality_budgets"]
        measured = ", ".join(results.get("quality_objectives", ["val_acc", "params"]))
        lines += ["", f"| TPE on fmnist-bench-2 ({measured}) | " + " | ".join(f"HV at {b} compute" for b in budgets)
                  + " | study trials | windows |", "|---" * (len(budgets) + 3) + "|"]
        for label, row in results["quality"].items():
            lines.append(f"| {label} | " + " | ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for lo, m, hi in row["hv"])
                         + f" | {row['study_trials']:.0f} | {row['windows']:.0f} |")
    lines += ["", "targets:"] + [f"- {t}" for t in results["targets"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--per-size", type=int, default=30, help="suggestions measured at each size")
    parser.add_argument("--decisions", type=int, default=300, help="rung decisions measured at each size")
    parser.add_argument("--proposers", default=",".join(DEFAULT_PROPOSERS))
    parser.add_argument("--mlflow-trials", type=int, default=40)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--quality", action="store_true", help="TPE vs bounded TPE on the record (minutes)")
    parser.add_argument("--quality-objectives", type=int, choices=sorted(QUALITY_ARMS), default=2,
                        help="--quality over val_acc, params (2) or also latency_ms (3)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="processes (1: timings not shared with a sibling)")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    names = [n for n in args.proposers.split(",") if n]
    load = [load_average()]
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                     "sizes": list(sizes)}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:  # one process per measurement: memory is its own
        results["proposers"] = list(pool.map(measure_proposer, [(n, sizes, args.per_size) for n in names]))
        results["rungs"] = list(pool.map(measure_rungs, [(k, sizes, args.decisions) for k in (2, 3)]))
        if not args.no_mlflow:
            results["mlflow"] = pool.submit(measure_mlflow, args.mlflow_trials).result()
    largest = str(sizes[-1])
    targets, overhead = [], {}
    for row in results["proposers"]:
        median = row["sizes"][largest]["suggest"]["median_ms"] / 1e3
        targets.append(f"suggestion at {int(largest):,} trials, {row['name']}: {1e3 * median:.1f} ms median "
                       f"({'met' if median < TARGET_SUGGEST_S else 'MISSED'}: < {1e3 * TARGET_SUGGEST_S:.0f} ms)")
    for row in results["rungs"]:
        median = row["sizes"][largest]["decide"]["median_ms"] / 1e3
        targets.append(f"rung decision at {int(largest):,} results, {row['objectives']} objectives: "
                       f"{1e3 * median:.2f} ms median ({'met' if median < TARGET_DECISION_S else 'MISSED'}: "
                       f"< {1e3 * TARGET_DECISION_S:.0f} ms)")
    proposer_rows = {row["name"]: row for row in results["proposers"]}
    rung_rows = {row["objectives"]: row for row in results["rungs"]}
    stores = {k: v for k, v in (results.get("mlflow") or {}).items() if "samples" in v} or {"no MLflow": {}}
    for label in (f"tpe-2obj history {HISTORY}", "tpe-2obj", f"tpe-3obj history {HISTORY}",
                  f"tpe-3obj history {HISTORY_3OBJ}"):
        if label not in proposer_rows:
            continue
        # what the driver costs at the largest size: measured samples are not kept, so each cost is
        # its median and p95 in equal shares (a conservative stand-in for the measured spread)
        def spread(entry: dict) -> list[float]:
            return [entry["median_ms"] / 1e3, entry["p95_ms"] / 1e3]

        at = proposer_rows[label]["sizes"][largest]
        rung = rung_rows[3 if "3obj" in label else 2]["sizes"][largest]["decide"]
        for store, row in stores.items():
            costs = {"suggest": spread(at["suggest"]), "complete": spread(at["complete"]), "decide": spread(rung)}
            if row:
                costs.update({"log_open": row["samples"]["open"], "log_epoch": row["samples"]["epoch"],
                              "log_close": row["samples"]["close"]})
            overhead[f"{label}, MO-ASHA, MLflow {store}"] = driver_overhead(costs)
    results["overhead"] = overhead
    for label, row in overhead.items():
        targets.append(f"driver overhead ({label}): {100 * row['waiting_share']:.3f}% of slot time "
                       f"({'met' if row['waiting_share'] < TARGET_OVERHEAD else 'MISSED'}: < 1%)")
    if args.quality:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from search_strategies import TABLE_BUDGETS

        arms = QUALITY_ARMS[args.quality_objectives]
        jobs = [(h, seed, e, args.quality_objectives) for h, e in arms for seed in range(args.seeds)]
        with ProcessPoolExecutor(max_workers=max(args.jobs, 2)) as pool:
            runs = list(pool.map(quality_one, jobs))
        results["quality_budgets"] = list(TABLE_BUDGETS)
        results["quality_objectives"] = runs[0]["objectives"]
        results["quality"] = {}
        for h, e in arms:
            mine = [r for r in runs if r["history"] == h and r["explore_after"] == e]
            hv = [tuple(float(q) for q in np.percentile([r["hv"][str(b)] for r in mine], [25, 50, 75]))
                  for b in TABLE_BUDGETS]
            label = "unbounded" if h is None else f"history {h}"
            label += "" if e is None else f", exploring after {e} misses (the rule before)"
            results["quality"][label] = {
                "hv": hv, "study_trials": statistics.median(r["study_trials"] for r in mine),
                "windows": statistics.median(r["windows"] for r in mine), "runs": mine}
    load.append(load_average())
    results["load"] = " -> ".join("/".join(x) for x in load)
    results["targets"] = targets
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for store in (results.get("mlflow") or {}).values():
        store.pop("samples", None)
    (out / "driver_scale.json").write_text(json.dumps(results, indent=1))
    print(render(results))
    print(f"wrote {out / 'driver_scale.json'}")


if __name__ == "__main__":
    main()
