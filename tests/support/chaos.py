"""The chaos soak: a sweep of many trials under fire, and the check that nothing was lost or done twice.

Used by ``tests/test_chaos_soak.py`` (a short soak in ``make test``) and ``bench/chaos_soak.py``
(500+ trials, 16 at a time). One soak is:

- a real ``mlflow server`` (one light process, ``--workers 1``) on a sqlite file, on a fixed
  loopback port, that the sweep logs to with ``--tracking-uri http://127.0.0.1:PORT``;
- ``resnetx sweep --search grid`` over a finite space, every network of it (``--num-samples``
  = the number of distinct networks), in a process of its own (``python -m tests.support.cli``,
  so that ``--trainable synthetic`` exists), with fractional CPUs so that many trials share
  the cores;
- a chaos thread that SIGKILLs a random Ray worker process of that driver every few seconds
  (``ray::ImplicitFunc`` processes below the driver, found in /proc: trial actors, busy or
  between two trials of actor reuse; never the driver, the raylet or Ray's agents);
- once, when a share of the trials has finished, the driver itself is SIGKILLed (then every
  process it left, as a crashed machine would) and ``resnetx sweep --resume`` continues it;
- once, later, the MLflow server is SIGKILLed and started again on the same port and file.

The expected outcome is computed without Ray or chaos: the searcher (``SearchCore`` with the
grid proposer) is walked dry over the same plan, which gives the exact set of trial keys a
sweep trains and the exact counts of its proposals. :func:`check` then compares what the store,
Tune's state, the searcher's counts and the stand-in's attempt files say with it, and returns
the figures plus a list of problems (empty: nothing lost, nothing twice).

The store is read with SQL on the server's sqlite file (read-only, so the checks never race a
writer): one query gives every metric row of every run, which makes "each epoch logged exactly
once" exact for hundreds of runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.test_faults_common import (
    REPO,
    attempts,
    descendants_running,
    fresh_runs_dir,
    kill_session,
    query,
    standin_env,
    tune_trials,
    wait_for,
)

# A trial actor's process title while it runs a trial (``ray::ImplicitFunc`` between trials of
# actor reuse and while the actor starts; Ray's own agents are ``ray::...Agent``): the chaos kills
# workers in the middle of training, where a kill costs a retry from the last checkpoint.
WORKER_MARKER = "ray::ImplicitFunc.train"


def soak_space(units: list[str], bases: list[int], lrs: list[float], epochs: int, max_params: int = 100_000) -> str:
    """A finite space on digits in the shape of ``fmnist-bench`` (choices and integer ranges, no
    grid axes), so ``--search grid`` walks every combination and meets duplicates (a basic unit's
    two bottle scales are one network) and points over the parameter budget, as a real space
    does. Its size grows with the lists."""
    return f"""\
name: chaos-soak
objectives: [val_acc:max, params:min]
budget: {{max_params: {max_params}}}
model:
  stem: cifar
  in_channels: 1
  num_classes: 10
  unit: {{choice: {json.dumps(units)}}}
  bottle_scale: {{choice: [1.0, 2.0]}}
  base: {{choice: {json.dumps(bases)}}}
  stem_width: {{expr: base}}
  fold: {{low: 1, high: 2}}
  num_nodes: {{split: {{low: 3, high: 4}}, stages: 3, min_per_stage: 1}}
  start_id: {{low: fold, high: last_node - 1}}
  end_id: {{low: start_id + 1, high: last_node}}
  shortcut: projection
data: {{name: digits, image_size: 16}}
train:
  epochs: {epochs}
  lr: {{choice: {json.dumps(lrs)}}}
"""


@dataclass
class SoakSettings:
    """One soak: the sweep, and the chaos inflicted on it."""

    space_text: str
    concurrent: int = 8
    cpus_per_trial: float = 0.25
    epoch_s: float = 0.3  # the stand-in's time per epoch
    kill_every_s: tuple[float, float] = (1.5, 4.0)  # a worker SIGKILLed every uniform(a, b) seconds
    driver_kill_at: float = 0.3  # share of the trials finished when the driver is SIGKILLed
    server_restart_at: float = 0.6  # ... when the MLflow server is SIGKILLed and started again
    server_down_s: float = 2.0  # how long the server stays away
    max_failures: int = 50  # Tune's retries of one trial: chaos may hit one trial several times
    seed: int = 0
    timeout_s: float = 900.0
    chaos_seed: int = 1


@dataclass
class Expected:
    """What the sweep must train, from a dry walk of its searcher (no Ray)."""

    keys: set[str]
    stats: dict[str, Any]
    epochs: int
    networks: int


@dataclass
class SoakRun:
    """What happened during one soak: the chaos inflicted and where the results are."""

    root: Path
    runs_dir: Path
    db: Path
    uri: str
    expected: Expected
    settings: SoakSettings
    worker_kills: list[tuple[float, int]] = field(default_factory=list)  # (time, pid)
    driver_kills: int = 0
    server_restarts: int = 0
    finished_at_driver_kill: dict[str, int] = field(default_factory=dict)  # run id -> end_time
    driver_rcs: list[int | None] = field(default_factory=list)
    wall_s: float = 0.0
    output: str = ""
    events: list[str] = field(default_factory=list)


# -- the expected outcome -------------------------------------------------------------------
def sweep_args(space_file: Path, expected: Expected | None, settings: SoakSettings, uri: str) -> list[str]:
    args = ["--trainable", "synthetic", "--space", str(space_file), "--search", "grid",
            "--max-concurrent", str(settings.concurrent), "--cpus-per-trial", str(settings.cpus_per_trial),
            "--max-failures", str(settings.max_failures), "--seed", str(settings.seed), "--tracking-uri", uri,
            "--no-report"]
    if expected is not None:
        args += ["--num-samples", str(len(expected.keys))]
    return args


def expected_outcome(space_file: Path, seed: int) -> Expected:
    """Walk the sweep's own searcher dry over its plan: the trial keys it trains and its counts.

    ``--num-samples`` is the number of distinct networks, so Tune stops asking once the last new
    network is proposed; the walk stops there too.
    """
    from resnetx.errors import ConfigError
    from search_spaces import load_space
    from sweep.config.experiment import trial_key
    from sweep.config.settings import SweepSettings
    from sweep.search.core import FINISHED, SearchCore
    from sweep.search.proposers import GridProposer
    from sweep.tune.runner import plan_sweep
    from tests.support import register_standin

    register_standin()
    space = load_space(str(space_file))
    networks = set()
    for point in space.every_point():
        with contextlib.suppress(ConfigError):  # a point that does not build is never trained
            if space.budget_excess(point) <= 0:
                networks.add(trial_key(point, space.seed_is_axis))
    plan = plan_sweep(SweepSettings(space=str(space_file), search="grid", num_samples=len(networks),
                                    trainable="synthetic", seed=seed))
    core = SearchCore(plan.space, GridProposer(plan.space), plan.objectives, seed, overrides=plan.overrides)
    keys: set[str] = set()
    while len(keys) < len(networks):
        config = core.suggest(f"dry-{len(keys)}")
        if config is None or config == FINISHED:
            break
        keys.add(config["config_hash"])
    stats = core.stats.to_dict()
    return Expected(keys=keys, stats={k: stats[k] for k in ("proposed", "trained", "duplicates", "infeasible")},
                    epochs=int(plan.example.train.epochs), networks=len(networks))


# -- the MLflow server ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on a sqlite file, restartable on the same port (DESIGN.md §5: one
    light process with job execution off and one worker)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = folder, port or free_port()
        self.db = folder / "server.db"
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = folder / "server.log"

    def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri", f"sqlite:///{self.db}",
                 "--artifacts-destination", str(self.folder / "server-artifacts")],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder)
        if not wait_for(self.healthy, timeout=timeout, interval=0.25):
            raise RuntimeError(f"mlflow server did not start on {self.uri}: {self.log.read_text()[-2000:]}")

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(f"{self.uri}/health", timeout=2).status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and everything it started (a crash, not a clean stop)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            self.proc = None


class AnswerLosingProxy:
    """An HTTP proxy in front of a tracking server that forwards every request, but for the first
    request whose path starts with ``lose`` drops the server's answer and closes the connection:
    what a client sees when the server is killed right after it committed (or a read times out).
    MLflow's client then sends the request again."""

    def __init__(self, target: str, lose: str) -> None:
        import http.server
        import socketserver

        self.target, self.lose = target, lose
        self.lost: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(proxy.target + self.path, data=body or None, method=self.command,
                                                 headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, data, answer = response.status, response.read(), response.headers
                except urllib.error.HTTPError as exc:
                    status, data, answer = exc.code, exc.read(), exc.headers
                if self.path.startswith(proxy.lose) and not proxy.lost:
                    proxy.lost.append(self.path)  # committed by the server; its answer never arrives
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for key, value in answer.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

            def log_message(self, *args: Any) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the chaos ------------------------------------------------------------------------------
class WorkerKiller(threading.Thread):
    """SIGKILLs a random trial worker of the current driver every uniform(a, b) seconds, once at
    least one more trial has finished since its previous kill."""

    def __init__(self, run: SoakRun) -> None:
        super().__init__(daemon=True)
        self.run_, self.driver_pid = run, 0
        self.rng = random.Random(run.settings.chaos_seed)
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        low, high = self.run_.settings.kill_every_s
        finished_at_last_kill = -1
        while not self.stop.wait(self.rng.uniform(low, high)):
            if self.paused.is_set() or not self.driver_pid:
                continue
            # Never faster than trials finish: a kill costs a new worker process (seconds of CPU),
            # and on a loaded machine kills every few seconds would starve the sweep for good.
            finished = len(finished_trial_runs(self.run_.db))
            if finished <= finished_at_last_kill:
                continue
            workers = descendants_running(self.driver_pid, WORKER_MARKER)
            if not workers:
                continue
            pid = self.rng.choice(sorted(workers))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                self.run_.worker_kills.append((time.monotonic() - self.started, pid))
                finished_at_last_kill = finished


def finished_trial_runs(db: Path) -> dict[str, int]:
    """run id -> end_time of the FINISHED trial runs in the server's store (read-only SQL)."""
    rows = query(db, "SELECT runs.run_uuid, runs.end_time FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
                     "WHERE tags.key = 'role' AND tags.value = 'trial' AND runs.status = 'FINISHED' "
                     "AND runs.lifecycle_stage = 'active'")
    return dict(rows)


def _sweep(runs_dir: Path, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``sweep_process``, its output into ``log`` (a pipe nobody reads would fill up and block the
    driver of a long soak)."""
    cmd = [sys.executable, "-m", "tests.support.cli", "sweep", "--runs-dir", str(runs_dir), *args]
    with open(log, "a") as out:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)


def run_soak(root: Path, settings: SoakSettings, log=print) -> SoakRun:
    """Start the server and the sweep, inflict the chaos, resume after the driver kill, wait for the end.

    Whatever happens, every process it started is gone when it returns or raises.
    """
    root.mkdir(parents=True, exist_ok=True)
    space_file = root / "space.yaml"
    space_file.write_text(settings.space_text)
    expected = expected_outcome(space_file, settings.seed)
    server = MlflowServer(root)
    runs_dir = fresh_runs_dir(root / "runs")  # Ray's storage path lives here; the store is the server's
    run = SoakRun(root=root, runs_dir=runs_dir, db=server.db, uri=server.uri, expected=expected, settings=settings)
    env = standin_env(epoch_s=settings.epoch_s, attempts_dir=str(root / "attempts"))
    sweep_log = root / "sweep.log"
    total = len(expected.keys)
    killer = WorkerKiller(run)
    started = time.monotonic()
    proc: subprocess.Popen | None = None

    def note(text: str) -> None:
        run.events.append(f"{time.monotonic() - started:7.1f} s  {text}")
        log(run.events[-1])

    def finished() -> int:
        return len(finished_trial_runs(server.db))

    try:
        server.start()
        note(f"soak: {total} trials ({expected.networks} networks), {settings.concurrent} at a time, "
             f"{settings.cpus_per_trial} CPU each; mlflow server {server.uri}")
        proc = _sweep(runs_dir, sweep_args(space_file, expected, settings, server.uri), env, sweep_log)
        killer.driver_pid = proc.pid
        killer.start()
        deadline = started + settings.timeout_s
        # 1. the driver, SIGKILLed once a share of the trials has finished
        if not wait_for(lambda: finished() >= settings.driver_kill_at * total or proc.poll() is not None,
                        timeout=deadline - time.monotonic(), interval=0.2):
            raise TimeoutError(f"the sweep did not reach the driver kill in time ({finished()} trials finished)")
        if proc.poll() is None:
            killer.paused.set()
            run.finished_at_driver_kill = finished_trial_runs(server.db)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            time.sleep(1.0)
            kill_session(proc)  # then the Ray processes it left
            run.driver_rcs.append(proc.returncode)
            run.driver_kills += 1
            note(f"driver SIGKILLed with {len(run.finished_at_driver_kill)} of {total} trials finished "
                 f"({len(run.worker_kills)} workers killed so far)")
            proc = _sweep(runs_dir, ["--resume", "--tracking-uri", server.uri], env, sweep_log)
            killer.driver_pid = proc.pid
            killer.paused.clear()
            note("resnetx sweep --resume started")
        # 2. the MLflow server, SIGKILLed and started again while the resumed driver writes to it
        threshold = max(settings.server_restart_at * total, len(run.finished_at_driver_kill) + 1)
        if wait_for(lambda: finished() >= threshold or proc.poll() is not None,
                    timeout=deadline - time.monotonic(), interval=0.2) and proc.poll() is None:
            server.kill()
            note(f"mlflow server SIGKILLed with {finished()} trials finished")
            time.sleep(settings.server_down_s)
            server.start()
            run.server_restarts += 1
            note("mlflow server started again")
        # 3. the end
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            note("the sweep did not finish in time")
        run.driver_rcs.append(proc.returncode)
        note(f"sweep ended, exit code {proc.returncode}, {len(run.worker_kills)} workers killed")
    finally:
        killer.stop.set()
        if killer.is_alive():
            killer.join(timeout=10)
        if proc is not None:
            kill_session(proc)  # whatever Ray left behind (nothing, after a clean end)
        server.kill()  # the checks read its file
        run.wall_s = time.monotonic() - started
        run.output = sweep_log.read_text(errors="replace") if sweep_log.exists() else ""
    return run


# -- the checks -----------------------------------------------------------------------------
def _all_runs(db: Path) -> dict[str, dict[str, Any]]:
    """run id -> {status, end_time, lifecycle, tags} of every run in the store, deleted ones included."""
    runs: dict[str, dict[str, Any]] = {}
    for run_id, status, end_time, stage in query(db, "SELECT run_uuid, status, end_time, lifecycle_stage FROM runs"):
        runs[run_id] = {"status": status, "end_time": end_time, "lifecycle": stage, "tags": {}}
    for run_id, key, value in query(db, "SELECT run_uuid, key, value FROM tags"):
        if run_id in runs:
            runs[run_id]["tags"][key] = value
    return runs


def check(run: SoakRun) -> tuple[dict[str, Any], dict[str, str]]:
    """Figures of the soak and every problem found, by kind (none: nothing lost, nothing twice, none RUNNING)."""
    from reports import schema

    problems: dict[str, str] = {}

    def problem(kind: str, text: str) -> None:
        problems[kind] = text

    expected, epochs = run.expected, run.expected.epochs
    if run.driver_rcs[-1:] != [0]:
        problem("driver", f"the last driver exited {run.driver_rcs[-1:]}: {run.output[-3000:]}")
    every_run = _all_runs(run.db)
    runs = {i: r for i, r in every_run.items() if r["lifecycle"] == "active"}
    deleted = {i: r for i, r in every_run.items() if r["lifecycle"] != "active"}
    deleted_running = [i for i, r in deleted.items() if r["status"] == "RUNNING"]
    if deleted_running:
        problem("deleted_running", f"deleted runs left RUNNING: {deleted_running}")
    parent_ids = [i for i, r in runs.items() if r["tags"].get(schema.TAG_ROLE) == schema.ROLE_SWEEP]
    parents = [runs[i] for i in parent_ids]
    trials = {i: r for i, r in runs.items() if r["tags"].get(schema.TAG_ROLE) == schema.ROLE_TRIAL}
    if len(parents) != 1 or parents[0]["status"] != "FINISHED":
        problem("parent", f"parent runs: {[p['status'] for p in parents]} (want one FINISHED)")
    # every trial exactly one run, each expected network once, none RUNNING
    by_hash: dict[str, list[str]] = defaultdict(list)
    for run_id, r in trials.items():
        by_hash[r["tags"].get(schema.TAG_CONFIG_HASH, "")].append(run_id)
    twice = {h: ids for h, ids in by_hash.items() if len(ids) > 1}
    if twice:
        problem("runs_twice", f"{len(twice)} networks have several runs: {dict(list(twice.items())[:5])}")
    # Tune's own trial list, and the trials it failed for good after ONE worker death (see
    # double_failures): found first, reported as their own kind, kept out of the checks below
    tune_path = parents[0]["tags"].get("tune_path") if parents else None
    tune_list = tune_trials(tune_path) if tune_path else []
    dropped = double_failures(tune_list, trials, run.settings.max_failures)
    if dropped:
        problem("tune_double_failure", f"{len(dropped)} trials failed for good by Tune after one worker death "
                f"(max_failures {run.settings.max_failures}), their networks never trained: {dropped}")
    gone = checkpoint_gone(tune_list, trials)
    if gone:
        problem("tune_checkpoint_gone", f"{len(gone)} trials failed for good after the driver kill: Tune's saved "
                f"state named a checkpoint that num_to_keep=1 had already deleted: {gone}")
    dropped = {**dropped, **gone}
    dropped_runs = {i for i, r in trials.items() if r["tags"].get(schema.TAG_TRIAL_ID) in dropped.values()}
    lost, extra = expected.keys - set(by_hash), set(by_hash) - expected.keys
    if lost:
        problem("runs_lost", f"{len(lost)} expected networks have no run: {sorted(lost)[:10]}")
    if extra:
        problem("runs_extra", f"{len(extra)} runs of networks the sweep should not train: {sorted(extra)[:10]}")
    statuses = Counter(r["status"] for i, r in trials.items() if i not in dropped_runs)
    status_tags = Counter(r["tags"].get(schema.TAG_STATUS) for i, r in trials.items() if i not in dropped_runs)
    if set(statuses) != {"FINISHED"} or set(status_tags) != {schema.STATUS_FINISHED}:
        problem("run_status", f"trial runs by status: {dict(statuses)}, status tags {dict(status_tags)}")
    trial_ids = Counter(r["tags"].get(schema.TAG_TRIAL_ID) for r in trials.values())
    if any(n > 1 for n in trial_ids.values()):
        problem("trial_ids", f"trial ids with several runs: {[t for t, n in trial_ids.items() if n > 1][:5]}")
    # every run's per-epoch history: each step 1..E once per epoch metric
    rows = query(run.db, "SELECT run_uuid, key, step, count(*) FROM metrics GROUP BY run_uuid, key, step")
    history: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for run_id, key, step, n in rows:
        if run_id in trials and key in schema.EPOCH_METRICS:
            history[(run_id, key)].append((int(step), int(n)))
    bad_history = []
    for run_id in set(trials) - dropped_runs:
        for key in ("val_acc", "val_loss", "train_loss", "lr", "tse"):
            got = sorted(history.get((run_id, key), []))
            if got != [(step, 1) for step in range(1, epochs + 1)]:
                bad_history.append((trials[run_id]["tags"].get(schema.TAG_CONFIG_HASH), key, got))
    if bad_history:
        problem("history", f"{len(bad_history)} epoch histories not exactly steps 1..{epochs} once: {bad_history[:5]}")
    # finished runs were never reopened or rewritten after the driver kill
    rewritten = [i for i, end in run.finished_at_driver_kill.items() if trials.get(i, {}).get("end_time") != end]
    if rewritten:
        problem("rewritten", f"{len(rewritten)} runs FINISHED before the driver kill were changed after it: "
                f"{rewritten[:5]}")
    # Tune's own trial list: one trial per network (by the trial id of its run), every one TERMINATED
    hash_of_trial = {r["tags"].get(schema.TAG_TRIAL_ID): r["tags"].get(schema.TAG_CONFIG_HASH) for r in trials.values()}
    tune_hashes = Counter(hash_of_trial.get(t["trial_id"]) for t in tune_list)
    if len(tune_list) != len(expected.keys) or set(tune_hashes) != expected.keys or max(tune_hashes.values()) > 1:
        problem("tune_trials", f"Tune lists {len(tune_list)} trials over {len(tune_hashes)} networks "
                        f"(want {len(expected.keys)} once each)")
    tune_status = Counter(t["status"] for t in tune_list if t["trial_id"] not in dropped.values())
    if set(tune_status) != {"TERMINATED"}:
        problem("tune_status", f"Tune trials by status: {dict(tune_status)}")
    retries = sum(t["num_failures"] for t in tune_list)
    epochs_repeated = sum(len(t["results"]) - len({r["epoch"] for r in t["results"]}) for t in tune_list)
    # the searcher's counts: they add up, and equal the dry walk's
    stats = _search_stats(tune_path)
    if stats is None:
        problem("stats_missing", f"no search-stats.json beside the Tune state {tune_path}")
        stats = {}
    else:
        if stats["proposed"] != stats["trained"] + stats["duplicates"] + stats["infeasible"]:
            problem("stats_sum", f"searcher counts do not add up: {stats}")
        if {k: stats[k] for k in expected.stats} != expected.stats:
            problem("stats_dry", f"searcher counts {stats} differ from the dry walk's {expected.stats}")
        parent_metrics = dict(query(run.db, "SELECT key, value FROM latest_metrics WHERE run_uuid = ? AND key LIKE "
                                    "'search_%'", parent_ids[0]))
        recorded = {k: int(parent_metrics.get(f"search_{k}", -1)) for k in expected.stats}
        if recorded != {k: stats[k] for k in expected.stats}:
            problem("stats_parent", f"the parent run records {recorded}, the searcher's file {stats}")
    # the stand-in's attempts: only expected networks ever trained, and no retry went back
    starts = attempts(run.root / "attempts")
    if set(starts) - set(dropped) != expected.keys - set(dropped):
        problem("attempts_set", f"the stand-in trained {len(starts)} networks, expected {len(expected.keys)} (extra "
                f"{sorted(set(starts) - expected.keys)[:5]}, never {sorted(expected.keys - set(starts))[:5]})")
    went_back = {h: s for h, s in starts.items() if s != sorted(s) or s[0] != 0}
    if went_back:
        problem("attempts_order", f"attempts that restarted before an earlier one: {dict(list(went_back.items())[:5])}")
    restarts = sum(len(s) - 1 for s in starts.values())
    noop_restarts = sum(1 for s in starts.values() for start in s[1:] if start >= epochs)
    figures = {"trials": len(trials), "expected": len(expected.keys), "epochs": epochs,
               "concurrent": run.settings.concurrent, "cpus_per_trial": run.settings.cpus_per_trial,
               "workers_killed": len(run.worker_kills), "driver_kills": run.driver_kills,
               "server_restarts": run.server_restarts, "tune_retries": retries, "attempt_restarts": restarts,
               "restarts_with_nothing_left": noop_restarts, "epochs_reported_twice_to_tune": epochs_repeated,
               "runs_lost": len(lost), "runs_twice": len(twice), "runs_not_finished": sum(
                   n for s, n in statuses.items() if s != "FINISHED"),
               "histories_wrong": len(bad_history), "twins_removed": len(deleted),
               "tune_double_failures": len(dropped) - len(gone), "tune_checkpoint_gone": len(gone),
               "search_stats": stats,
               "wall_s": round(run.wall_s, 1)}
    return figures, problems


def double_failures(tune_list: list[dict[str, Any]], trials: dict[str, dict[str, Any]],
                    max_failures: int) -> dict[str, str]:
    """config hash -> trial id of trials Tune ended ERROR after a worker death with retries left.

    Ray 2.60, ray/tune/execution/tune_controller.py ``_process_trial_failure`` (lines 1352-1365):
    when a trial's actor dies while two of its tasks are in flight (seen here: an actor reused for
    the next trial, killed before the stand-in started), both futures fail. The first failure
    finds the trial RUNNING and recovers it (status PENDING). The second finds it PENDING and takes
    the other branch: ERROR, the searcher told error, whatever ``--max-failures`` allows. The
    run ends FAILED with "The actor is dead ..." and that network is not trained in the sweep.
    """
    from reports import schema

    runs = {r["tags"].get(schema.TAG_TRIAL_ID): r for r in trials.values()}
    found = {}
    for trial in tune_list:
        run = runs.get(trial["trial_id"])
        if trial["status"] != "ERROR" or run is None or trial["num_failures"] > max_failures:
            continue
        if "actor is dead" in run["tags"].get("error", "") or "actor died" in run["tags"].get("error", ""):
            found[run["tags"].get(schema.TAG_CONFIG_HASH, "")] = trial["trial_id"]
    return found


def checkpoint_gone(tune_list: list[dict[str, Any]], trials: dict[str, dict[str, Any]]) -> dict[str, str]:
    """config hash -> trial id of trials that ended ERROR because their checkpoint was gone.

    Seen once in the short soak: a trial checkpointed epoch 1 (Tune's saved state names
    ``checkpoint_000000``) and epoch 2 (``checkpoint_000001`` registered, ``000000`` deleted at once
    by ``CheckpointConfig(num_to_keep=1)``, sweep/tune/runner.py). Then the driver was killed
    before Tune saved its state again. After ``--resume``, every retry fails with "Could not
    recover from checkpoint as it does not exist on storage anymore" until ``--max-failures``
    runs out. The run ends FAILED with 2 of 4 epochs.
    """
    from reports import schema

    runs = {r["tags"].get(schema.TAG_TRIAL_ID): r for r in trials.values()}
    found = {}
    for trial in tune_list:
        run = runs.get(trial["trial_id"])
        error = run["tags"].get("error", "") if run is not None else ""
        if trial["status"] == "ERROR" and "does not exist on storage" in error:
            found[run["tags"].get(schema.TAG_CONFIG_HASH, "")] = trial["trial_id"]
    return found


def _search_stats(tune_path: str | None) -> dict[str, Any] | None:
    if not tune_path:
        return None
    from sweep.tune.runner import search_stats_path

    path = search_stats_path(tune_path)
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def summary(figures: dict[str, Any]) -> str:
    """The soak's figures, one line each (what bench/chaos_soak.py prints and docs/reliability.md shows)."""
    stats = figures["search_stats"]
    return "\n".join([
        f"trials: {figures['trials']} (expected {figures['expected']}, {figures['epochs']} epochs each, "
        f"{figures['concurrent']} at a time, {figures['cpus_per_trial']} CPU each)",
        f"workers killed: {figures['workers_killed']} (Tune retries: {figures['tune_retries']}, trial restarts "
        f"seen by the stand-in: {figures['attempt_restarts']}, of which {figures['restarts_with_nothing_left']} "
        "with nothing left to train)",
        f"driver kills survived: {figures['driver_kills']}",
        f"server restarts: {figures['server_restarts']}",
        f"runs lost: {figures['runs_lost']}, runs twice: {figures['runs_twice']}, runs not FINISHED: "
        f"{figures['runs_not_finished']}, epoch histories wrong: {figures['histories_wrong']}, run twins of a "
        f"retried create_run removed: {figures['twins_removed']}",
        f"trials Tune failed for good after one worker death (Ray 2.60's double failure, repaired by "
        f"sweep/tune/ray_fixes.py: 0 expected): {figures['tune_double_failures']}; failed after the resume "
        f"because their checkpoint was gone (num_to_keep=1, repaired there too: 0 expected): "
        f"{figures['tune_checkpoint_gone']}",
        "epochs reported to Tune twice (retried from the checkpoint before): "
        f"{figures['epochs_reported_twice_to_tune']}",
        f"searcher: {stats.get('proposed')} proposed = {stats.get('trained')} trained + {stats.get('duplicates')} "
        f"duplicates + {stats.get('infeasible')} infeasible",
        f"wall time: {figures['wall_s']:.0f} s",
    ])


__all__ = ["REPO", "AnswerLosingProxy", "Expected", "MlflowServer", "SoakRun", "SoakSettings", "check",
           "expected_outcome", "run_soak", "soak_space", "summary"]
