"""The README's two commands work from a fresh clone: nothing outside the clone is needed.

The repository is cloned (``git clone`` of the committed HEAD: uncommitted edits are not in
it, as on any other machine) into a temporary folder, and the Makefile targets are dry-run
there with the developer's virtual environment out of the picture (``VENV``/``VIRTUAL_ENV``
unset, its ``bin`` off ``PATH``): every install step and command must name the clone's own
``.venv`` and scripts. The Debian packages ``make test`` installs (.ci/system-deps.sh) are
present on this machine, so their missing and refused paths are tried with the script's
path overrides, a dry run, and a real unprivileged user (``setpriv`` to ``nobody``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the developer's venv or an enclosing make."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VENV", "VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "PYTEST_ARGS")
           and not k.startswith("SYSTEM_DEPS_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not p.startswith(str(REPO)))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def clone() -> Iterator[Path]:
    """A clone of HEAD in a folder any user may read (the unprivileged run below needs to)."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.fail("git and make are needed (the README's commands are make targets)")
    folder = Path(tempfile.mkdtemp(prefix="resnetx-clone-"))
    try:
        folder.chmod(0o755)
        target = folder / "repo"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True, capture_output=True,
                       env=clean_env(), timeout=120)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make(clone: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=clone, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_clone_has_no_venv_and_holds_what_make_test_runs(clone):
    assert not (clone / ".venv").exists()
    for path in ("Makefile", ".ci/run", ".ci/system-deps.sh", "pyproject.toml", "tests/test_ui.py"):
        assert (clone / path).is_file(), path
    assert os.stat(clone / ".ci" / "run").st_mode & stat.S_IXUSR  # CI calls it directly


@pytest.mark.parametrize("target", ["test", "sweep", "lint"])
def test_make_targets_use_only_the_clones_own_files(clone, target):
    done = make(clone, "-n", target)
    assert done.returncode == 0, done.stderr
    commands = done.stdout
    assert str(REPO) not in commands, commands  # nothing of the developer's checkout
    venv = f"{clone}/.venv"
    # a fresh clone gets its own venv first, and installs the clone itself into it
    assert f"test -x {venv}/bin/python || python3 -m venv {venv}\n" in commands, commands
    assert f"{venv}/bin/python -m pip install --quiet -e '{clone}/.[dev]'" in commands
    last = commands.strip().splitlines()[-1]
    expected = {"test": f"cd {clone}/ && {venv}/bin/python -m pytest",
                "sweep": f"cd {clone}/ && {venv}/bin/resnetx sweep",
                "lint": f"cd {clone}/ && {venv}/bin/mypy"}[target]
    assert last.strip() == expected, commands
    absolute = set(re.findall(r"(?<![\w.])/[\w./-]+", commands))
    assert all(p.startswith(str(clone)) for p in absolute), sorted(absolute)
    if target == "test":  # the system packages are checked before the (slow) venv install
        lines = commands.splitlines()
        assert lines[0] == f"sh {clone}/.ci/system-deps.sh", commands


def test_make_test_from_another_folder_still_uses_the_clone(clone, tmp_path):
    done = subprocess.run(["make", "--no-print-directory", "-n", "-f", str(clone / "Makefile"), "test"],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and f"{clone}/.venv/bin/python -m pytest" in done.stdout, done.stdout + done.stderr


def test_system_deps_pass_when_present_and_would_install_what_is_missing(clone, tmp_path):
    present = make(clone, "system-deps")
    assert (present.returncode, present.stdout, present.stderr) == (0, "", ""), present  # this machine has both
    if os.geteuid() != 0:
        pytest.skip("the install path is tried as root (the unprivileged path is the next test)")
    gone = str(tmp_path / "nowhere")
    chromium = make(clone, "system-deps", SYSTEM_DEPS_CHROMIUM=gone, SYSTEM_DEPS_DRY_RUN="1")
    assert chromium.returncode == 0, chromium.stderr
    assert chromium.stdout == ("would run: apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install "
                               "-y chromium\n")
    both = make(clone, "system-deps", SYSTEM_DEPS_CHROMIUM=gone, SYSTEM_DEPS_FASHION_MNIST=gone,
                SYSTEM_DEPS_DRY_RUN="1")
    assert both.stdout.endswith("apt-get install -y chromium dataset-fashion-mnist\n"), both.stdout
    # a folder with only some of the four IDX files is not the data set
    partial = tmp_path / "fashion"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    only_data = make(clone, "system-deps", SYSTEM_DEPS_FASHION_MNIST=str(partial), SYSTEM_DEPS_DRY_RUN="1")
    assert only_data.stdout.endswith("apt-get install -y dataset-fashion-mnist\n"), only_data.stdout


def test_make_test_without_permission_stops_with_one_line_before_installing_anything(clone):
    """As a user without root or sudo, ``make test`` names the command and installs nothing (no venv)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run make as another user")
    if shutil.which("sudo") is not None:
        pytest.skip("sudo is installed: whether nobody may use it depends on this machine's sudoers")
    done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           "make", "--no-print-directory", "test", "SYSTEM_DEPS_CHROMIUM=/nonexistent/chromium"],
                          cwd=clone, env=clean_env(HOME="/nonexistent"), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0, done.stdout + done.stderr
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert ours == ["make test needs Debian's chromium: run  sudo apt-get update && sudo apt-get install -y "
                    "chromium  and then make test again"], done.stderr
    assert done.stdout == "" and not (clone / ".venv").exists()  # stopped before the venv install
