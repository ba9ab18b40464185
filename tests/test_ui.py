"""`resnetx ui`: a real MLflow server on 127.0.0.1 and a headless Chromium that loads it.

Chromium is Debian's ``chromium`` package at /usr/bin/chromium (``make test`` installs it when
missing, see .ci/system-deps.sh); the test fails rather than skips without it. The screenshot
is kept under ``test-artifacts/``.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from reports.report import build_report
from sweep.cli.ui import STOP_TIMEOUT_S, free_port, front_filter
from sweep.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, prepare_store

try:
    from test_reports import TRIALS, expected_front, shared_store
except ImportError:  # tests imported as a package
    from tests.test_reports import TRIALS, expected_front, shared_store

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # starts an MLflow server and a browser


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict[str, Any]:
    return shared_store(tmp_path_factory)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                if len(address) == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add("ipv6:" + address)
    return found


def chromium(url: str, profile: Path, *action: str, budget_ms: int = 20000) -> subprocess.CompletedProcess:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1400,900", f"--virtual-time-budget={budget_ms}",
               *action, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def visible_text(dom: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def _printed_link(printed: str, label: str) -> str:
    """The URL `resnetx ui` printed after ``label`` (one per line)."""
    found = re.search(re.escape(label) + r"(\S+)", printed)
    assert found, f"no {label!r} line:\n{printed}"
    return found.group(1)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default in the ui's process, as in a terminal's foreground job.

    A suite started in the background (``make test &``, ``nohup ... &``) runs with SIGINT ignored,
    which POSIX shells do to background jobs, and every child inherits that: the ui then never
    saw the test's Ctrl-C and the test timed out after all its checks had passed (seen in every
    background full run, never in CI's foreground one)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ui_serves_the_store_on_localhost_and_chromium_sees_the_runs(store, tmp_path):
    assert CHROMIUM.exists(), "Debian's chromium is required (apt-get install -y chromium; make test installs it)"
    build_report(store["uri"], "resnetx", tmp_path / "report")  # on_front / pareto_rank tags to filter on
    port = free_port("127.0.0.1")
    ui = subprocess.Popen([sys.executable, "-m", "sweep.cli", "ui", "--runs-dir", str(store["folder"]),
                           "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True, preexec_fn=_ctrl_c_as_in_a_terminal)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(ui.stdout.readline, "")), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while not any(f"MLflow UI: {url}" in line for line in lines):
            assert ui.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no URL printed:\n" + "".join(lines)
            time.sleep(0.2)
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert response.status == 200
        assert listening_addresses(port) == {"127.0.0.1"}  # bound to loopback only

        # the REST API behind the UI: the users' filter finds exactly the front
        found = _post(f"{url}/api/2.0/mlflow/runs/search",
                      {"experiment_ids": [store["experiment_id"]], "filter": "tags.on_front = 'true'"})
        assert {r["info"]["run_name"] for r in found["runs"]} == expected_front(store)

        # what `resnetx ui` printed: the experiment's first page, the sweep it took, its front
        printed = "".join(lines)
        experiment_id = store["experiment_id"]
        first_page = _printed_link(printed, "experiment resnetx (runs table): ")
        assert first_page == f"{url}/#/experiments/{experiment_id}?workflowType=machine_learning"
        assert (f"sweep quick-sweep (run {store['parent']}, {len(TRIALS)} trials, the latest sweep with trials"
                in printed), printed
        front_page = _printed_link(printed, "its Pareto front, by val_acc: ")  # the sweep's first objective
        assert "no trial of it is tagged on_front yet" not in printed  # the report above tagged them

        # the React app, rendered by a headless browser (a fresh profile each: no remembered view)
        # 1. the experiment's first page is its runs table, with both sweeps' parent runs
        text = visible_text(chromium(first_page, tmp_path / "p1", "--dump-dom").stdout)
        assert text.lstrip().startswith("Runs - Experiment"), text[:300]
        assert "Run Name" in text and "quick-sweep" in text and "old-sweep" in text, text[:2000]
        assert f"{2 + len(TRIALS) + len(store['old_children'])} matching runs" in text, text[:2000]
        # ... which in MLflow 3.17.2 takes the link's workflowType, not the experiment's kind tag alone
        plain = visible_text(chromium(f"{url}/#/experiments/{experiment_id}", tmp_path / "p2", "--dump-dom").stdout)
        assert plain.lstrip().startswith("Overview - Experiment") and "quick-sweep" not in plain, (
            "MLflow now opens the experiment by its mlflow.experimentKind tag: the printed links may drop "
            "workflowType=machine_learning\n" + plain[:600])
        # 2. the front link: the filter is in the search box; the table lists exactly the sweep's
        #    front, flat, most accurate first
        dom = chromium(front_page, tmp_path / "p3", "--dump-dom").stdout
        box = re.search(r'<input[^>]*value="([^"]*on_front[^"]*)"', dom)
        assert box and html.unescape(box.group(1)) == front_filter(store["parent"]), dom[:2000]
        text = visible_text(dom)
        front = expected_front(store)
        assert f"{len(front)} matching runs" in text and "quick-sweep" not in text, text[:2000]
        listed = re.findall(r"\bHide run #[0-9a-f]{6} (t\d)\b", text)
        accuracy = {name: acc for name, *_, acc in TRIALS}
        assert set(listed) == front and len(listed) == len(front), text[:2000]
        assert [accuracy[n] for n in listed] == sorted((accuracy[n] for n in front), reverse=True), listed
        # 3. a trial's own page
        child = store["runs"]["t4"]
        dom = chromium(f"{url}/#/experiments/{experiment_id}/runs/{child}", tmp_path / "p4", "--dump-dom")
        assert "t4" in visible_text(dom.stdout) and child in dom.stdout
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "ui-experiment-runs.png"
        shot.unlink(missing_ok=True)
        chromium(front_page, tmp_path / "p5", f"--screenshot={shot}")
        assert shot.is_file() and shot.stat().st_size > 10_000
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            # its own stop may take SIGTERM's wait and SIGKILL's (stop_server): under the full suite's
            # load the server once used more than 30 s, which failed this test after every check passed
            code = ui.wait(timeout=2 * STOP_TIMEOUT_S + 15)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)  # the group this test started
            raise
    reader.join(timeout=5)
    assert code == 0, "".join(lines)
    assert "stopping the MLflow UI" in "".join(lines)
    assert not listening_addresses(port)  # the server is gone, not orphaned


def test_ui_user_errors_are_one_line(store, tmp_path, capsys):
    import socket

    from sweep.cli import main as cli_main

    assert cli_main(["ui", "--runs-dir", str(tmp_path / "nothing")]) == 2  # no store: nothing started
    assert not (tmp_path / "nothing" / "mlflow.db").exists()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert cli_main(["ui", "--runs-dir", str(store["folder"]), "--port", str(busy.getsockname()[1])]) == 2
    assert cli_main(["ui", "--tracking-uri", "http://127.0.0.1:5000"]) == 2
    assert cli_main(["ui", "--runs-dir", str(store["folder"]), "--port", "0", "--experiment", "nope"]) == 2
    assert cli_main(["ui", "--runs-dir", str(store["folder"]), "--port", "0", "--sweep", "0" * 32]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("resnetx: error:") for line in err), err
    assert "--experiment: got 'nope'" in err[3] and "--sweep: got '" in err[4]


def test_store_marks_experiments_as_model_training_and_keeps_a_users_choice(store):
    """prepare_store creates experiments with the model-training kind, adds it to one that lacks
    it (stores made before), and leaves a kind someone chose in the UI alone."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store["uri"])
    experiment_id = store["experiment_id"]
    kind = lambda: client.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND_TAG)  # noqa: E731
    assert kind() == MODEL_TRAINING_KIND  # created so by prepare_store (tests/test_reports.build_store)
    try:
        client.delete_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG)
        assert kind() is None
        assert prepare_store(store["uri"], "resnetx") == experiment_id
        assert kind() == MODEL_TRAINING_KIND
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, "genai_development")
        prepare_store(store["uri"], "resnetx")
        assert kind() == "genai_development"
    finally:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
