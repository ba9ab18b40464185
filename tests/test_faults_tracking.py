"""Load on tracking: 16 writer processes x 1,000 metrics into one sqlite store, through sweep.tracking.store.

Processes, not threads: SQLite locks between processes are what a Ray cluster's trials and a
driver would contend for. The writers are forked from one server process that imported MLflow
once (multiprocessing's ``forkserver``), so 16 imports do not dominate the test. Every writer
opens its run with ``RunLogger.start``, waits at a barrier so all 16 write at once, logs 1,000
steps of one metric flushing every 10 steps (100 ``log_batch`` writes each, 1,600 in all: the
granularity of the sweep's per-epoch flushes), and closes the run. Nothing may fail on a lock,
and every metric must be there exactly once.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from sweep.tracking.store import prepare_store, sqlite_uri
from tests.test_faults_common import fresh_runs_dir

pytestmark = pytest.mark.faults
WRITERS, METRICS, FLUSH_EVERY = 16, 1000, 10


def _write(uri: str, experiment_id: str, index: int, barrier: Any, results: Any) -> None:
    """One writer process: any exception (a lock error that outlived the retries) is sent back whole."""
    try:
        from sweep.tracking.store import RunLogger

        run = RunLogger.start(uri, experiment_id, name=f"writer-{index}", tags={"role": "load"})
        run.log_params({"writer": index})
        barrier.wait(timeout=300)
        started, slowest = time.perf_counter(), 0.0
        for step in range(METRICS):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            if (step + 1) % FLUSH_EVERY == 0:
                before = time.perf_counter()
                run.flush()
                slowest = max(slowest, time.perf_counter() - before)
        run.end()
        results.put({"run_id": run.run_id, "seconds": time.perf_counter() - started, "slowest_write_s": slowest})
    except BaseException:
        results.put({"error": traceback.format_exc()})


def test_sixteen_writers_lose_nothing_and_never_fail_on_a_lock(tmp_path: Path):
    runs_dir = fresh_runs_dir(tmp_path / "runs")
    uri = sqlite_uri(runs_dir)
    experiment_id = prepare_store(uri, "load")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["sweep.tracking.store", "tests.test_faults_tracking"])
    barrier, results = context.Barrier(WRITERS + 1), context.Queue()
    writers = [context.Process(target=_write, args=(uri, experiment_id, i, barrier, results)) for i in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:
        barrier.wait(timeout=300)  # every writer has its run open: go
        started = time.monotonic()
        reports = [results.get(timeout=600) for _ in writers]
        wall = time.monotonic() - started
        for writer in writers:
            writer.join(timeout=60)
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.kill()
    errors = [r["error"] for r in reports if "error" in r]
    assert not errors, errors[0]
    assert all(w.exitcode == 0 for w in writers)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for report in reports:
        assert client.get_run(report["run_id"]).info.status == "FINISHED"
        history = client.get_metric_history(report["run_id"], "loss")
        assert len(history) == METRICS and sorted(m.step for m in history) == list(range(METRICS))
        assert {m.step: m.value for m in history}[METRICS - 1] == 1.0 / METRICS
    slowest = max(r["slowest_write_s"] for r in reports)
    print(f"{WRITERS} writers x {METRICS} metrics ({WRITERS * METRICS // FLUSH_EVERY} batched writes): "
          f"{wall:.1f} s wall, slowest single write {slowest:.2f} s, 0 lock errors")
