"""sweep/tracking/writer.py on a real MLflow store: the driver never waits, order and every epoch kept.

The resume-side repairs (epochs a killed driver's queue lost, runs it left open) are checked end to
end with a real Ray sweep in tests/test_faults_resume.py (``lose_queued_writes``).
"""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from sweep.tracking.store import RunLogger, prepare_store, sqlite_uri
from sweep.tracking.writer import BackgroundWriter, QueuedRunLogger


@pytest.fixture
def store(tmp_path):
    uri = sqlite_uri(tmp_path / "mlflow.db")
    return uri, prepare_store(uri, "writer", runs_folder=tmp_path)


def _queued(writer: BackgroundWriter, uri: str, experiment_id: str) -> QueuedRunLogger:
    return QueuedRunLogger(writer, lambda: RunLogger.start(uri, experiment_id, name="trial"))


def _steps(uri: str, run_id: str, key: str = "val_acc") -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


def test_queuing_does_not_wait_for_the_store(store):
    uri, experiment_id = store
    writer = BackgroundWriter()
    writer.submit(lambda: time.sleep(0.5))  # a slow store: the writer is busy for half a second
    logger = _queued(writer, uri, experiment_id)
    started = time.perf_counter()
    for epoch in range(1, 11):
        logger.log_metrics({"val_acc": 0.1 * epoch}, step=epoch)
    logger.set_tags({"status": "finished"})
    logger.end("FINISHED")
    queued_s = time.perf_counter() - started
    writer.close()
    assert queued_s < 0.1, queued_s  # a synchronous writer would have waited >= 0.5 s
    run = MlflowClient(uri).get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["status"] == "finished"
    assert _steps(uri, logger.run_id) == list(range(1, 11))


def test_a_writer_behind_sends_one_batch_per_run(store):
    uri, experiment_id = store
    writer, busy, release = BackgroundWriter(), threading.Event(), threading.Event()
    writer.submit(lambda: (busy.set(), release.wait()))
    assert busy.wait(10)
    logger = _queued(writer, uri, experiment_id)
    for epoch in range(1, 6):
        logger.log_metrics({"val_acc": 0.5, "train_loss": 1.0 / epoch}, step=epoch)
    assert writer.pending == 2  # the run's open and one flush, not five
    release.set()
    writer.drain()
    assert writer.writes == 3  # the blocker, the open, one batch of 10 metrics
    assert _steps(uri, logger.run_id, "train_loss") == [1, 2, 3, 4, 5]
    writer.close()


def test_writes_keep_their_order(store):
    uri, experiment_id = store
    writer = BackgroundWriter()
    logger = _queued(writer, uri, experiment_id)
    logger.set_tags({"status": "running"})
    logger.log_metrics({"val_acc": 0.2}, step=1)
    logger.set_tags({"status": "finished"})  # a later tag wins: written after the first
    logger.log_params({"lr": 0.1})
    logger.end("KILLED")
    writer.close()
    run = MlflowClient(uri).get_run(logger.run_id)
    assert run.data.tags["status"] == "finished" and run.data.params["lr"] == "0.1"
    assert run.info.status == "KILLED" and run.data.metrics["val_acc"] == 0.2


def test_a_failed_write_is_raised_on_the_driver():
    writer = BackgroundWriter()

    def broken() -> None:
        raise ValueError("the store refused it")

    writer.submit(broken)
    with pytest.raises(ValueError, match="refused"):
        writer.drain()
    writer.submit(broken)
    time.sleep(0.2)
    with pytest.raises(ValueError, match="refused"):
        writer.submit(lambda: None)  # the next write the driver queues
    writer.close()


def test_close_sends_everything_queued(store):
    uri, experiment_id = store
    writer = BackgroundWriter()
    loggers = [_queued(writer, uri, experiment_id) for _ in range(20)]
    for logger in loggers:
        for epoch in (1, 2, 3):
            logger.log_metrics({"val_acc": 0.3}, step=epoch)
        logger.end("FINISHED")
    writer.close()
    runs = MlflowClient(uri).search_runs([experiment_id], max_results=100)
    assert len(runs) == 20 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(_steps(uri, r.info.run_id) == [1, 2, 3] for r in runs)
