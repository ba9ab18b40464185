"""A throwaway PostgreSQL server (and an ``mlflow server`` on top of it) for the tests.

Debian's ``postgresql`` package (installed by ``make test``'s system-deps, .ci/system-deps.sh)
brings the server binaries under ``/usr/lib/postgresql/<version>/bin`` but no cluster of ours:
``initdb`` makes one in a temporary folder, ``pg_ctl`` starts it listening on a Unix socket
only (no TCP port to collide with other jobs on a shared machine), and it is stopped and
deleted at the end. ``initdb`` and ``postgres`` refuse to run as root, so as root both run as
an unprivileged system user (``postgres``, else ``nobody``) through ``runuser``, in a folder
that user owns (pytest's own tmp folders are ``0700`` root's, unreachable for it).

Missing binaries, a missing driver or a server that does not start fail with one line (never a
skip): the suite is meant to run where ``make test`` installed what it needs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_ROOT = Path(os.environ.get("SYSTEM_DEPS_POSTGRESQL", "/usr/lib/postgresql"))  # the layout of Debian's package
UNPRIVILEGED_USERS = ("postgres", "nobody")  # who runs the server when the tests run as root
SUPERUSER = "resnetx"  # the database role initdb creates (trust auth: no password on the socket)
# Server options (pg_ctl hands them to postgres through the shell): the Unix socket only, and no
# durability a throwaway cluster does not need (MLflow's schema migrations are many small DDLs).
_FAST_AND_LOCAL = ("-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be run here; the message is one line naming what to do."""


def server_binaries(root: Path = PG_ROOT) -> Path:
    """The ``bin`` folder of the newest installed server version (``initdb``, ``pg_ctl``, ``postgres``)."""
    found = sorted((p.parent for p in root.glob("*/bin/initdb") if os.access(p, os.X_OK)),
                   key=lambda b: _version_key(b.parent.name))
    if not found:
        raise PostgresUnavailable(f"PostgreSQL's server binaries are not under {root}/<version>/bin: "
                                  "run `make system-deps` (installs Debian's postgresql) or "
                                  "`apt-get install -y postgresql`")
    return found[-1]


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def _run_as() -> str | None:
    """The user to run initdb/pg_ctl as: None (ourselves) unless we are root, who may not."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable(f"running as root and none of the users {', '.join(UNPRIVILEGED_USERS)} exists "
                              "to run PostgreSQL as (initdb refuses root)")


@dataclass
class PostgresServer:
    """A running throwaway cluster: connect through ``uri(database)``; ``create_database`` for isolation."""

    base: Path  # holds data/, the socket and the log; owned by the server's user
    bin_dir: Path
    user: str | None  # the OS user the server runs as (None: this process's own)
    databases: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base  # short: a Unix socket path must stay under ~107 bytes

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def uri(self, database: str = "postgres", password: str | None = None) -> str:
        """An SQLAlchemy/MLflow URI over the Unix socket (SQLAlchemy 2.1's driver of ``postgresql://``: psycopg).

        ``password`` is accepted and ignored by the server (trust auth): a URI as a team's looks,
        to check that no password is ever written where others read it.
        """
        user = f"{SUPERUSER}:{password}" if password else SUPERUSER
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"

    def _command(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def run_tool(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run one of the server's programs as the server's user; a failure raises with its output."""
        done = subprocess.run(self._command(str(self.bin_dir / tool), *args), cwd=self.base, capture_output=True,
                              text=True, timeout=timeout, check=False, env={**os.environ, "LC_ALL": "C.UTF-8"})
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise PostgresUnavailable(f"{tool} {' '.join(args[:2])} failed (exit {done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-800:]} {log}".strip())
        return done

    def create_database(self, name: str, password: str | None = None) -> str:
        """A fresh, empty database (what a team gives MLflow); returns its URI."""
        import psycopg

        # autocommit: CREATE DATABASE may not run inside a transaction
        with psycopg.connect(dbname="postgres", user=SUPERUSER, host=str(self.socket_dir), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.uri(name, password)

    def query(self, database: str, sql: str) -> list[tuple]:
        """Read-only SQL straight on the database (what the test checks without MLflow in between)."""
        import psycopg

        with psycopg.connect(dbname=database, user=SUPERUSER, host=str(self.socket_dir)) as conn:
            return conn.execute(sql).fetchall()


def check_driver() -> None:
    """The Python driver MLflow's ``postgresql://`` needs (the ``dev`` extra installs ``psycopg[binary]``)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("the PostgreSQL driver psycopg is not installed: pip install -e '.[dev]' "
                                  "(it brings psycopg[binary])") from None


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Make, start, and at the end stop and delete a cluster on a Unix socket in a fresh /tmp folder."""
    check_driver()
    bin_dir = server_binaries()
    user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="resnetx-pg-"))  # mode 0700; then handed to the server's user
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(base=base, bin_dir=bin_dir, user=user)
    started = False
    try:
        server.run_tool("initdb", "-D", str(server.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                        "--no-locale", "--no-sync")
        server.run_tool("pg_ctl", "-D", str(server.data_dir), "-l", str(server.log_file),
                        "-o", f"-k {server.socket_dir} {_FAST_AND_LOCAL}",
                        "-w", "-t", "60", "start")
        started = True
        yield server
    finally:
        if started:
            try:  # immediate: the cluster is thrown away, nothing to flush
                server.run_tool("pg_ctl", "-D", str(server.data_dir), "-m", "immediate", "-w", "stop", timeout=60)
            except (PostgresUnavailable, subprocess.TimeoutExpired):
                _kill_postmaster(server.data_dir)
        shutil.rmtree(base, ignore_errors=True)


def _kill_postmaster(data_dir: Path) -> None:
    """Last resort when pg_ctl cannot stop it: SIGQUIT the postmaster named in its pid file."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
    except (OSError, ValueError, IndexError):
        pass


def free_port() -> int:
    """A loopback port nobody holds right now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, timeout: float = 120) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 over ``backend_store_uri``, serving artifacts from ``artifacts``.

    One light process (DESIGN.md §5: job execution off, one worker), the artifacts proxied by the
    server (``--serve-artifacts``: clients need no access to the folder); yields its URL. The
    server makes (migrates) the database's tables before it answers ``/health``.
    """
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", backend_store_uri,
               "--serve-artifacts", "--artifacts-destination", str(artifacts)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-5:])
                    raise RuntimeError(f"mlflow server on {backend_store_uri.split('?')[0]} did not start: {tail}")
                time.sleep(0.3)
            yield url
        finally:
            _stop(server)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group we started (the server and its worker), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/health", timeout=2).status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's throwaway PostgreSQL server; what is missing fails the test in one line (never a skip)."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server
