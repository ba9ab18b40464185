"""Serve the MLflow UI for the local store on 127.0.0.1 until Ctrl-C.

Runs `mlflow server` on the runs folder's mlflow.db with light settings (one worker, no job
execution: one small process instead of ~15), waits until it answers, prints the URL and
stops it cleanly on Ctrl-C. It also prints links that open the model-training view: the
experiment's runs table, and a sweep's Pareto front (the runs filtered to
tags.on_front = "true" and the sweep's trials, once `resnetx report` has tagged them), naming
the sweep it took (the one `resnetx report` takes by default: the latest that has trials, or
--sweep). Sort by metrics there, select runs and press Compare.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reports.schema import shown_uri
from resnetx.errors import ConfigError

HEALTH_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--runs-dir", default=None, metavar="DIR",
                       help="runs folder holding mlflow.db (default: $RESNETX_RUNS_DIR or ./resnetx-runs)")
    where.add_argument("--tracking-uri", default=None, metavar="URI",
                       help="a database URI for the backend store (instead of --runs-dir)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1; other values expose the UI to the network)")
    parser.add_argument("--experiment", default=None, metavar="NAME",
                        help="experiment whose sweep the printed link opens (default: resnetx)")
    parser.add_argument("--sweep", default=None, metavar="RUN_ID",
                        help="sweep parent run the link filters on (default: the latest sweep that has trials)")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError("--port", port, "must be in 1..65535 (or 0 for a free port)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError("--port", port, f"cannot be bound on {host} ({exc.strerror or exc})") from None


def server_command(backend_uri: str, artifact_root: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
            "--default-artifact-root", artifact_root.resolve().as_uri(), "--host", host, "--port", str(port),
            "--workers", "1"]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"})
    return env


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Poll ``/health`` until it answers OK; fail early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server did not answer {url}/health within {timeout:.0f} s")


def stop_server(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the server's own process group (it runs uvicorn as a child), then SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)  # the group this command created (start_new_session)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def resolve_store(args: argparse.Namespace) -> tuple[str, Path]:
    """(backend store URI, artifact root) for the local store; a missing store is a user error."""
    from sweep.config.paths import runs_dir, sqlite_uri

    if args.tracking_uri:
        if args.tracking_uri.startswith(("http://", "https://", "databricks")):
            raise ConfigError("--tracking-uri", args.tracking_uri, "is already a server: open it in a browser")
        folder = runs_dir(args.runs_dir)
        uri = args.tracking_uri
    else:
        folder = runs_dir(args.runs_dir)
        uri = sqlite_uri(folder)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ConfigError("--runs-dir", str(folder), "holds no MLflow store (mlflow.db); run `resnetx sweep` first")
    return uri, folder / "artifacts"


def front_filter(sweep_run_id: str) -> str:
    """The runs-table search that shows one sweep's Pareto front (MLflow's search syntax)."""
    return f'tags.on_front = "true" and tags.`mlflow.parentRunId` = "{sweep_run_id}"'


# MLflow 3.17.2's React app picks an experiment's first page by its global "workflow type"
# (the sidebar's GenAI / Model training switch, remembered per browser, GenAI by default; the
# URL parameter ``workflowType`` overrides it), not by the experiment's ``mlflow.experimentKind``
# tag: measured with a fresh Chromium profile, #/experiments/<id> opens the GenAI overview with
# the tag set either way, and the runs table with ``workflowType=machine_learning``. So every
# link printed here carries the parameter; the tag is still written (sweep.tracking.store).
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def experiment_url(base: str, experiment_id: str) -> str:
    """The experiment's first page in the model-training view: its runs table."""
    return f"{base}/#/experiments/{experiment_id}?{MODEL_TRAINING_VIEW}"


def runs_url(base: str, experiment_id: str, search: str, order_by: str | None = None, ascending: bool = False) -> str:
    """The experiment's runs table with ``search`` applied, sorted by the metric ``order_by``.

    ``searchFilter``, ``orderByKey`` and ``orderByAsc`` are the query parameters the app reads
    its runs search and sort from (and writes when they are changed), inside the hash route
    ``#/experiments/<id>/runs``. Sorted by a metric, the table lists the matching trials flat
    (sorted by date it nests them, collapsed, under their sweep's parent run).
    """
    query = f"{MODEL_TRAINING_VIEW}&searchFilter={urllib.parse.quote(search, safe='')}"
    if order_by:
        query += f"&orderByKey={urllib.parse.quote(f'metrics.`{order_by}`', safe='')}"
        query += f"&orderByAsc={'true' if ascending else 'false'}"
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


@dataclass(frozen=True)
class SweepLink:
    """What the printed link opens: which sweep (in words), its experiment, whether it is reported."""

    described: str  # reports.runs.SweepRuns.describe(): which sweep, and why that one
    experiment: str
    experiment_id: str
    sweep_run_id: str | None  # None: the experiment holds train runs only
    reported: bool  # some trial carries on_front = "true" (resnetx report has run)
    order_by: str = "val_acc"  # the sweep's first objective: the front is listed by it
    ascending: bool = False

    def lines(self, base: str) -> list[str]:
        out = [f"experiment {self.experiment} (runs table): {experiment_url(base, self.experiment_id)}",
               self.described]
        if self.sweep_run_id is None:
            return out
        front = runs_url(base, self.experiment_id, front_filter(self.sweep_run_id), self.order_by, self.ascending)
        out.append(f"its Pareto front, by {self.order_by}: {front}")
        if not self.reported:
            out.append(f"  no trial of it is tagged on_front yet: run  resnetx report --sweep {self.sweep_run_id}"
                       "  first")
        return out


def sweep_link(uri: str, args: argparse.Namespace) -> SweepLink | None:
    """The sweep the printed link opens, read before the server starts (the same default as report/export).

    An explicitly named experiment or sweep that does not exist is a one-line error; the
    default experiment may simply not exist yet (then there is nothing to link to).
    """
    from reports.runs import read_sweep_runs
    from sweep.config.paths import DEFAULT_EXPERIMENT

    try:
        sweep = read_sweep_runs(uri, args.experiment or DEFAULT_EXPERIMENT, args.sweep)
    except ConfigError as exc:
        if args.experiment or args.sweep or exc.field != "--experiment":
            raise
        return None
    from reports.pareto import DEFAULT_OBJECTIVES, parse_objectives

    reported = any(tags.get("on_front") == "true" for tags in sweep.report_tags.values())
    try:
        objectives = parse_objectives(sweep.objectives_tag or DEFAULT_OBJECTIVES)
    except ConfigError:  # a hand-edited tag: list the front by accuracy
        objectives = parse_objectives(DEFAULT_OBJECTIVES)
    first = objectives[0]
    return SweepLink(sweep.describe(), sweep.experiment, sweep.experiment_id, sweep.sweep_run_id, reported,
                     first.name, not first.maximize)


def run(args: argparse.Namespace) -> int:
    uri, artifacts = resolve_store(args)
    port = free_port(args.host) if args.port == 0 else args.port
    check_port(args.host, port)
    url = f"http://{args.host}:{port}"
    link = sweep_link(uri, args)
    process = subprocess.Popen(server_command(uri, artifacts, args.host, port), env=server_env(),
                               start_new_session=True)  # Ctrl-C reaches us; we stop the server's group
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(f"starting the MLflow UI on {url} (store: {shown_uri(uri)}) ...", flush=True)
        wait_healthy(url, process)
        print(f"MLflow UI: {url}  (Ctrl-C to stop)", flush=True)
        for line in link.lines(url) if link else []:
            print(line, flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: bound to {args.host}: anyone who can reach this machine can read the runs",
                  file=sys.stderr, flush=True)
        code = process.wait()
        print(f"mlflow server exited with code {code}", file=sys.stderr, flush=True)
        return 1 if code else 0
    except KeyboardInterrupt:
        print("stopping the MLflow UI ...", flush=True)
        return 0
    finally:
        stop_server(process)
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame) -> None:  # SIGTERM stops the UI like Ctrl-C
    raise KeyboardInterrupt
