"""Helpers shared by the fault-injection tests (tests/test_faults_*.py); no tests here.

Why a module of its own: every fault test starts real processes (sweeps, Ray workers, writers)
and reads back what survived from three places, each a plain file: MLflow's sqlite store (read
only, so a poll never races the sweep that writes it), Tune's experiment state (trial status and
``num_failures``: how often Tune retried) and the stand-in's attempt files (one line per trial
start, with the epoch it resumed from).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.sweep_helpers import wait_for  # noqa: F401  (re-exported: the fault tests poll with it)

REPO = Path(__file__).resolve().parents[1]
_TEMPLATE: dict[str, Path] = {}


# -- stores -------------------------------------------------------------------------------
def fresh_runs_dir(folder: Path) -> Path:
    """``folder`` holding an empty, migrated MLflow store (a copy of one made once per session).

    Creating a sqlite store runs ~8 s of migrations; copying a migrated one takes milliseconds.
    The copy is made with sqlite's backup API, so it is consistent even in WAL mode.
    """
    if "db" not in _TEMPLATE:
        from mlflow.tracking import MlflowClient

        from sweep.config.paths import sqlite_uri

        template = Path(tempfile.mkdtemp(prefix="resnetx-template-store-"))
        MlflowClient(sqlite_uri(template)).search_experiments()  # runs the migrations
        _TEMPLATE["db"] = template / "mlflow.db"
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(_TEMPLATE["db"]) as source, sqlite3.connect(folder / "mlflow.db") as target:
        source.backup(target)
    return folder


def query(db: Path, sql: str, *args: Any) -> list[tuple]:
    """Read-only SQL on MLflow's sqlite store; [] while the store is missing or locked."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


def trial_runs_with_status(db: Path, status: str) -> int:
    rows = query(db, "SELECT count(*) FROM runs JOIN tags ON runs.run_uuid = tags.run_uuid "
                     "WHERE tags.key = 'role' AND tags.value = 'trial' AND runs.status = ?", status)
    return rows[0][0] if rows else 0


def epochs_logged(db: Path, param: str, value: str) -> int:
    """How many val_acc steps the trial run(s) whose param ``param`` equals ``value`` have logged."""
    rows = query(db, "SELECT count(*) FROM metrics m JOIN params p ON m.run_uuid = p.run_uuid "
                     "WHERE m.key = 'val_acc' AND p.key = ? AND p.value = ?", param, value)
    return rows[0][0] if rows else 0


# -- processes ----------------------------------------------------------------------------
def standin_env(**options: Any) -> dict[str, str]:
    """The environment of a sweep whose stand-in trainable behaves as ``options`` say."""
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RESNETX_STANDIN": json.dumps(options)}


def sweep_process(runs_dir: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``resnetx sweep`` in its own session (so the test can kill it, and all it started, for real)."""
    cmd = [sys.executable, "-m", "tests.support.cli", "sweep", "--runs-dir", str(runs_dir), *args]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL every process left in the sweep's session (Ray's daemons and workers included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants_running(ancestor: int, marker: str) -> list[int]:
    """PIDs of processes below ``ancestor`` whose command line contains ``marker`` (from /proc).

    Ray names a trial's worker ``ray::ImplicitFunc.train()`` while it runs a function trainable.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker not in cmdline:
            continue
        parent, hops = _parent(pid), 0
        while parent > 1 and parent != ancestor and hops < 32:
            parent, hops = _parent(parent), hops + 1
        if parent == ancestor:
            found.append(pid)
    return found


# -- what survived ------------------------------------------------------------------------
def _saved_trials(folder: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(trial, run metadata) of every trial in Tune's latest saved experiment state in ``folder``."""
    state_file = max(folder.glob("experiment_state-*.json"))
    for trial_json, meta_json in json.loads(state_file.read_text())["trial_data"]:
        trial = json.loads(trial_json) if isinstance(trial_json, str) else trial_json
        meta = json.loads(meta_json) if isinstance(meta_json, str) else meta_json
        yield trial, meta


def tune_trials(tune_path: str | Path) -> list[dict[str, Any]]:
    """Tune's own record of every trial: id, status, retries (``num_failures``), config, results."""
    folder = Path(tune_path)
    trials = []
    for trial, meta in _saved_trials(folder):
        results_file = folder / trial["relative_logdir"] / "result.json"
        results = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
        trials.append({"trial_id": trial["trial_id"], "status": trial["status"], "num_failures": meta["num_failures"],
                       "dir": folder / trial["relative_logdir"], "results": results})
    return trials


def saved_checkpoints(tune_path: str | Path) -> dict[str, tuple[str, Path]]:
    """trial id -> (status, the checkpoint folder Tune's latest saved state would restore it from)."""
    from ray import cloudpickle

    out = {}
    for trial, meta in _saved_trials(Path(tune_path)):
        manager = cloudpickle.loads(bytes.fromhex(meta["checkpoint_manager"]["value"]))
        latest = manager.latest_checkpoint_result
        if latest is not None and latest.checkpoint is not None:
            out[trial["trial_id"]] = (trial["status"], Path(latest.checkpoint.path))
    return out


def lose_saved_checkpoints(tune_path: str | Path) -> list[str]:
    """Leave every unfinished trial as a driver killed just after ``num_to_keep=1`` deleted the
    checkpoint its saved state names: that folder gone, a later one (the same epoch's files, so the
    trial's results stay those of an undisturbed run) in its place. Returns the trials changed."""
    changed = []
    for trial_id, (status, named) in saved_checkpoints(tune_path).items():
        if status == "TERMINATED" or not named.exists():
            continue
        index = int(named.name.split("_")[1])
        later = named.with_name(f"checkpoint_{index + 1:06d}")
        if later.exists():
            shutil.rmtree(named)
        else:
            named.rename(later)
        changed.append(trial_id)
    return changed


def lose_queued_writes(db: Path, tune_path: str | Path) -> dict[str, list[str]]:
    """Leave the store as a driver killed with MLflow writes still queued (sweep/tracking/writer.py)
    would: the last trial Tune's saved state has as TERMINATED gets its run RUNNING again without its
    close and its last epoch (metrics at that step, finals included), and every unfinished trial
    with a checkpoint whose run is still open loses the epochs from that checkpoint's on. Run after
    :func:`lose_saved_checkpoints` (which may have moved a checkpoint one folder on). Returns the
    trial ids changed, by kind ("ended", "running")."""
    from sweep.training.checkpoint import load_checkpoint

    run_of = dict(query(db, "SELECT value, run_uuid FROM tags WHERE key = 'trial_id'"))
    statuses = {t["trial_id"]: t["status"] for t in tune_trials(tune_path)}
    changed: dict[str, list[str]] = {"ended": [], "running": []}
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        ended = [t for t, status in statuses.items() if status == "TERMINATED" and t in run_of]
        if ended:
            run = run_of[ended[-1]]
            last = conn.execute("SELECT max(step) FROM metrics WHERE run_uuid = ?", (run,)).fetchone()[0]
            conn.execute("DELETE FROM metrics WHERE run_uuid = ? AND step = ?", (run, last))
            conn.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = ?", (run,))
            conn.execute("UPDATE tags SET value = 'running' WHERE run_uuid = ? AND key = 'status'", (run,))
            _recompute_latest(conn, run)
            changed["ended"].append(ended[-1])
        open_runs = {r for (r,) in conn.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")}
        for trial_id, (status, named) in saved_checkpoints(tune_path).items():
            # a run already closed had its epochs sent before its close (the writer keeps the order)
            if status == "TERMINATED" or run_of.get(trial_id) not in open_runs:
                continue
            folder = named if named.exists() else named.with_name(f"checkpoint_{int(named.name.split('_')[1]) + 1:06d}")
            if not folder.exists():
                continue
            epoch = int(load_checkpoint(folder)["epoch"])
            conn.execute("DELETE FROM metrics WHERE run_uuid = ? AND step >= ?", (run_of[trial_id], epoch))
            _recompute_latest(conn, run_of[trial_id])
            changed["running"].append(trial_id)
    return changed


def _recompute_latest(conn: sqlite3.Connection, run: str) -> None:
    """MLflow's ``latest_metrics`` rows of ``run`` from what its ``metrics`` table still holds."""
    conn.execute("DELETE FROM latest_metrics WHERE run_uuid = ?", (run,))
    conn.execute("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                 "SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics m WHERE run_uuid = ? "
                 "AND step = (SELECT max(step) FROM metrics WHERE run_uuid = m.run_uuid AND key = m.key) "
                 "GROUP BY key", (run,))


def attempts(folder: Path) -> dict[str, list[int]]:
    """The stand-in's record: config hash -> the epoch each attempt started from."""
    return {p.stem: [int(v) for v in p.read_text().split()] for p in sorted(folder.glob("*.attempts"))}


def runs_of(runs_dir: Path, experiment: str = "resnetx") -> tuple[list, list, Any]:
    """(parent runs, trial runs, client) of the sweeps in ``runs_dir``'s store."""
    from tests.sweep_helpers import all_runs, client_for, split_runs

    client = client_for(runs_dir)
    parents, children = split_runs(all_runs(client, experiment))
    return parents, children, client


def steps(client: Any, run_id: str, metric: str = "val_acc") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


# -- a tiny filesystem --------------------------------------------------------------------
@contextlib.contextmanager
def tiny_filesystem(folder: Path, size_kb: int) -> Iterator[Path | None]:
    """A real ``size_kb`` tmpfs mounted at ``folder``, or None where mounting is not allowed.

    Root mounts it; otherwise ``sudo -n`` (no password prompt) is tried. It is unmounted when
    the block ends, lazily if a process still holds a file on it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        yield None
        return
    command = [*prefix, "mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)]
    if subprocess.run(command, capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        if subprocess.run([*prefix, "umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run([*prefix, "umount", "-l", str(folder)], capture_output=True)


# -- sockets ------------------------------------------------------------------------------
def _listening_inodes() -> dict[str, tuple[str, int]]:
    """socket inode -> (address, port) of every TCP LISTEN socket in this network namespace."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A":  # LISTEN
                    continue
                address, port = fields[1].rsplit(":", 1)
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    ip = ".".join(str(b) for b in reversed(raw))
                else:  # IPv6: four little-endian 32-bit words
                    words = [raw[i:i + 4][::-1].hex() for i in range(0, 16, 4)]
                    ip = "::" if set("".join(words)) == {"0"} else ":".join(words)
                found[fields[9]] = (ip, int(port, 16))
    return found


def listeners_below(ancestor: int) -> set[tuple[str, str, int]]:
    """(process name, address, port) of LISTEN sockets held by ``ancestor`` and its descendants."""
    inodes = _listening_inodes()
    result = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        parent, hops = pid, 0
        while parent > 1 and parent != ancestor and hops < 32:
            parent, hops = _parent(parent), hops + 1
        if parent != ancestor:
            continue
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        result.add((name, *inodes[target[8:-1]]))
    return result


# -- a small store of finished sweeps (for report/export runs) ----------------------------
def build_sweep_store(folder: Path, trials: int = 6) -> dict[str, Any]:
    """One sweep written through the project's own tracking code, as the sweep callback writes it.

    Trials are samples of the built-in ``quick`` space (valid configs with their real parameter
    counts); one failed and one diverged, so reports and exports meet every kind of row.
    """
    import random

    import yaml

    from reports import schema
    from resnetx import count_params
    from search_spaces import load_space
    from sweep.config.experiment import ExperimentConfig
    from sweep.config.overrides import flatten
    from sweep.config.paths import sqlite_uri
    from sweep.tracking.store import RunLogger, prepare_store

    fresh_runs_dir(folder)
    uri = sqlite_uri(folder)
    experiment_id = prepare_store(uri, "resnetx")
    tags = {schema.TAG_SPACE: "quick", schema.TAG_SEARCH: "random"}
    parent = RunLogger.start(uri, experiment_id, name="fuzz-sweep", tags={
        **tags, schema.TAG_ROLE: schema.ROLE_SWEEP, schema.TAG_OBJECTIVES: "val_acc:max,params:min",
        schema.TAG_SWEEP_SEED: "0"})
    space, rng = load_space("quick"), random.Random(7)
    statuses = [schema.STATUS_FAILED, schema.STATUS_DIVERGED] + [schema.STATUS_FINISHED] * (trials - 2)
    for index, status in enumerate(statuses):
        config = ExperimentConfig(**space.sample(rng))
        run = RunLogger.start(uri, experiment_id, name=f"trial-{index}", parent_run_id=parent.run_id, tags={
            **tags, schema.TAG_ROLE: schema.ROLE_TRIAL, schema.TAG_TRIAL_ID: f"t{index}", schema.TAG_STATUS: status,
            schema.TAG_CONFIG_HASH: config.config_hash(), schema.TAG_MODEL_HASH: config.model.canonical_hash(),
            schema.TAG_DATASET: "digits"})
        run.log_params(flatten(config.to_dict()))
        params = count_params(config.model)
        if status != schema.STATUS_FAILED:
            acc = 0.0 if status == schema.STATUS_DIVERGED else 0.6 + 0.05 * index
            for epoch in (1, 2):
                run.log_metrics({"val_acc": acc * epoch / 2, "val_loss": 1.0 - acc / epoch, "lr": 0.05 / epoch},
                                step=epoch)
            run.log_metrics({"best_val_acc": acc, "params": params, "flops": params * 40,
                             "latency_ms": params / 1e5}, step=2)
        run.log_text(yaml.safe_dump(config.to_dict(), sort_keys=False), schema.CONFIG_ARTIFACT)
        run.end("FINISHED" if status == schema.STATUS_FINISHED else "FAILED")
    parent.end()
    return {"dir": folder, "uri": uri, "parent": parent.run_id}
