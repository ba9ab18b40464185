"""`resnetx ui`: a real MLflow server on 127.0.0.1 and a headless Chromium that loads it.

Chromium is Debian's ``chromium`` package at /usr/bin/chromium (``.ci/run`` installs it); the
test fails rather than skips without it. The screenshot is kept under ``test-artifacts/``.
"""

from __future__ import annotations

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
from sweep.cli.ui import free_port

try:
    from test_reports import expected_front, shared_store
except ImportError:  # tests imported as a package
    from tests.test_reports import expected_front, shared_store

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


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_ui_serves_the_store_on_localhost_and_chromium_sees_the_runs(store, tmp_path):
    assert CHROMIUM.exists(), "Debian's chromium is required (apt-get install -y chromium; .ci/run installs it)"
    build_report(store["uri"], "resnetx", tmp_path / "report")  # on_front / pareto_rank tags to filter on
    port = free_port("127.0.0.1")
    ui = subprocess.Popen([sys.executable, "-m", "sweep.cli", "ui", "--runs-dir", str(store["folder"]),
                           "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
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

        # the React app, rendered by a headless browser
        runs_page = f"{url}/#/experiments/{store['experiment_id']}/runs"
        dom = chromium(runs_page, tmp_path / "profile", "--dump-dom")
        text = visible_text(dom.stdout)
        assert "quick-sweep" in text and "old-sweep" in text, text[:2000]  # both sweeps' parent runs
        child = store["runs"]["t4"]
        dom = chromium(f"{url}/#/experiments/{store['experiment_id']}/runs/{child}", tmp_path / "profile",
                       "--dump-dom")
        assert "t4" in visible_text(dom.stdout) and child in dom.stdout  # a trial's own page
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "ui-experiment-runs.png"
        shot.unlink(missing_ok=True)
        filtered = runs_page + "?searchFilter=" + urllib.request.quote('tags.on_front = "true"')
        chromium(filtered, tmp_path / "profile", f"--screenshot={shot}")
        assert shot.is_file() and shot.stat().st_size > 10_000
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            code = ui.wait(timeout=30)
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
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("resnetx: error:") for line in err), err
