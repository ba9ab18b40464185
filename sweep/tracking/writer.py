"""MLflow writes off the Tune driver's loop: one background thread, in order, batched per run.

Why: Tune's driver is one serial loop, and a function trainable's ``report`` waits until the
driver has handled the previous result. Through an ``mlflow server`` each write is an HTTP round
trip (a run's open about 100 ms, an epoch 20 ms, its close 70 ms on this machine), so 64 trials
of 60 s spent 5% of their slot time waiting for the driver's MLflow writes alone (docs/benchmarks.md,
"Driver scale"). Here the driver only queues: a write costs it microseconds, and one writer thread
sends them, in the order queued. Epoch metrics of one run wait in that run's buffer and go out as
one batch when the writer reaches them, so a writer that falls behind sends fewer, larger batches
instead of falling further behind.

What a driver killed with writes still queued loses is repaired when the sweep resumes (the
callback re-reads the lost epochs from the trial's checkpoint, and closes runs of trials that had
ended: see ``sweep.tune.callbacks``). A write that fails after its retries is raised on the
driver at the next write it queues, and at :meth:`BackgroundWriter.drain`, as a synchronous write
would have been, one step later.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mlflow.entities import Metric

from sweep.tracking.store import RunLogger, metric_objects

_STOP = object()


class BackgroundWriter:
    """One daemon thread that runs queued writes in order; the first failure is kept and re-raised."""

    def __init__(self, name: str = "mlflow-writer") -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self.busy_s = 0.0  # seconds spent writing: a writer busy near 100% of the time falls behind
        self.writes = 0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a driver that raises out of Tune still sends what it queued

    def submit(self, write: Callable[[], None]) -> None:
        self.raise_failure()
        if not self._thread.is_alive():
            raise RuntimeError("the MLflow writer thread has stopped")
        self._queue.put(write)

    def drain(self) -> None:
        """Wait until every write queued so far has been sent; raise the first that failed."""
        if self._thread.is_alive():
            self._queue.join()
        self.raise_failure()

    def close(self) -> None:
        """Send what is queued, then stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        atexit.unregister(self.close)

    def raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is _STOP:
                    return
                if self._error is None:  # after a failure, later writes of the same runs would fail too
                    started = time.perf_counter()
                    write()
                    self.busy_s += time.perf_counter() - started
                    self.writes += 1
            except BaseException as exc:  # kept for the driver, which decides what a failure means
                self._error = exc
            finally:
                self._queue.task_done()


class QueuedRunLogger:
    """A :class:`RunLogger` whose writes go through a :class:`BackgroundWriter`, in the order made.

    The run itself is created by the writer too (its id is known once that write has run). Epoch
    metrics accumulate in a buffer that one queued flush sends; a flush already queued takes
    whatever has accumulated when it runs, so at most one flush per run waits in the queue.
    """

    def __init__(self, writer: BackgroundWriter, open_run: Callable[[], RunLogger]) -> None:
        self._writer = writer
        self._logger: RunLogger | None = None
        self._lock = threading.Lock()
        self._metrics: list[Metric] = []
        self._flush_queued = False
        self._opened = threading.Event()

        def open_now() -> None:
            self._logger = open_run()
            self._opened.set()

        writer.submit(open_now)

    @classmethod
    def wrap(cls, writer: BackgroundWriter, logger: RunLogger) -> QueuedRunLogger:
        """Queue the writes of a run that is open already (a re-attached run)."""
        return cls(writer, lambda: logger)

    @property
    def run_id(self) -> str:
        """The run's id: waits for the writer to have created the run."""
        while not self._opened.wait(0.1):
            self._writer.raise_failure()
        assert self._logger is not None
        return self._logger.run_id

    def _run(self) -> RunLogger:
        assert self._logger is not None, "the run is opened by the first queued write"
        return self._logger

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        batch = metric_objects(metrics, step)
        with self._lock:
            self._metrics.extend(batch)
            if self._flush_queued or not self._metrics:
                return
            self._flush_queued = True
        self._writer.submit(self._send_metrics)

    def _send_metrics(self) -> None:
        with self._lock:
            batch, self._metrics, self._flush_queued = self._metrics, [], False
        self._run().log_metric_batch(batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        copied = dict(tags)
        self._writer.submit(lambda: self._run().set_tags(copied))

    def log_params(self, params: Mapping[str, Any]) -> None:
        copied = dict(params)
        self._writer.submit(lambda: self._run().log_params(copied))

    def flush(self) -> None:
        """Nothing to do on the driver: buffered metrics are already queued to be sent."""

    def end(self, status: str = "FINISHED") -> None:
        """Queue the run's close; metrics logged before it are sent first."""
        def close() -> None:
            self._send_metrics()
            self._run().end(status)

        self._writer.submit(close)
