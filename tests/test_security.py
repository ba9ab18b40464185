"""Untrusted files and dependencies: pickles refused, exports plain data, no vulnerable minimums.

- A checkpoint or a ``.pth`` carrying a pickle payload (a ``__reduce__`` that would run code) is
  refused in one line by ``sweep.training.checkpoint.load_checkpoint``, ``resnetx.load_torchvision_weights``
  and ``resnetx train --resume`` — and the payload provably did not run (the same file, loaded
  without ``weights_only`` in a throw-away process, does run it).
- What the project writes for people to read back (exports, ``--json`` output) is plain
  YAML/JSON: no Python tags, ``yaml.safe_load`` round trips.
- pyproject.toml's minimum versions of torch, Ray and MLflow are at least the versions that fixed
  the advisories below for the features we use, and what is installed meets the pins.

Servers: ``resnetx ui`` binding 127.0.0.1 only is checked on the socket in tests/test_ui.py
(test_ui_serves_the_store_on_localhost_and_chromium_sees_the_runs, through /proc/net/tcp);
what a sweep listens on is checked in tests/test_faults_trials.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from resnetx import build_model, load_torchvision_weights
from resnetx.errors import ConfigError
from sweep.cli import main
from sweep.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

pytestmark = pytest.mark.faults
REPO = Path(__file__).resolve().parents[1]

# Minimum versions and why (advisories for what we use: torch.load(weights_only=True) of files
# from elsewhere, a local Ray runtime, a local sqlite MLflow store and `mlflow server` for the UI).
ADVISORY_MINIMUMS = {
    "torch": ("2.10", "CVE-2025-32434 (torch.load weights_only=True RCE, fixed 2.6.0); CVE-2026-24747 / "
                      "GHSA-63cw-57p8-fm3p (weights_only unpickler memory corruption, fixed 2.10.0)"),
    "torchvision": ("0.25", "the torchvision release of torch 2.10"),
    "ray": ("2.60", "token authentication (2.52; on by default for local clusters since 2.59); CVE-2026-27482 "
                    "(unauthenticated dashboard DELETE, fixed 2.54.0); CVE-2023-6019/6020/6021/48023 (fixed 2.8.1)"),
    "mlflow": ("3.11", "CVE-2026-2614 (model-version source path traversal, fixed 3.10.0); CVE-2026-2651 "
                       "(artifact multipart upload authorization, fixed 3.10.0); CVE-2026-4137 (world-writable "
                       "temporary model folders, fixed 3.11.0); CVE-2025-11201 (fixed 3.0.0)"),
}


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: code that a safe loader must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _poisoned(path: Path, marker: Path, state: dict) -> Path:
    torch.save({**state, "extra": Payload(marker)}, path)
    return path


def _payload_runs_when_trusted(path: Path, marker: Path) -> None:
    """The control: an unsafe load in another process does run the payload (then the marker goes)."""
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
    assert marker.exists(), "the payload is not a working payload"
    marker.unlink()


def test_a_poisoned_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    path = _poisoned(folder / CHECKPOINT_FILE, marker, {"format": 1, "epoch": 3, "model": {}})
    with pytest.raises(ConfigError) as refused:
        load_checkpoint(folder)
    assert "\n" not in str(refused.value) and "not a readable checkpoint" in str(refused.value)
    assert not marker.exists()
    _payload_runs_when_trusted(path, marker)


def test_poisoned_torchvision_weights_are_refused_and_the_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    model = build_model("resnet18", num_classes=10)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = _poisoned(tmp_path / "weights.pth", marker, state)
    with pytest.raises(ConfigError) as refused:
        load_torchvision_weights(model, path)
    assert "\n" not in str(refused.value) and refused.value.field == "weights"
    assert not marker.exists()
    _payload_runs_when_trusted(path, marker)


def test_resnetx_train_refuses_a_poisoned_resume_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    _poisoned(folder / CHECKPOINT_FILE, marker, {"format": 1, "epoch": 1})
    rc = main(["train", "tiny", "--no-mlflow", "--resume", str(folder), "--set", "data.subset=64",
               "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--resume" in err, err
    assert not marker.exists()


def _plain_yaml(text: str) -> object:
    assert "!!python" not in text and "!python" not in text
    document = yaml.safe_load(text)
    assert yaml.safe_load(yaml.safe_dump(document)) == document
    return document


def test_exports_and_json_output_are_plain_data(tmp_path, capsys):
    from tests.test_fuzz_cli import store

    runs_dir = store()["dir"]
    assert main(["export", "--runs-dir", str(runs_dir), "--front", "--out", str(tmp_path / "out")]) == 0
    files = sorted((tmp_path / "out").glob("*.yaml"))
    assert files
    for path in files:
        document = _plain_yaml(path.read_text())
        assert isinstance(document, dict) and {"model", "provenance"} <= set(document)
        assert main(["show", str(path), "--json"]) == 0  # what it exported reads back as plain config
    capsys.readouterr()
    for argv in (["show", "tiny", "--json"], ["spaces", "show", "quick", "--json", "--samples", "2"]):
        assert main(argv) == 0
        json.loads(capsys.readouterr().out)


def _minimum(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    return max(floors) if floors else None


def _dependencies() -> dict[str, Requirement]:
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    deps = tomllib.loads(text)["project"]["dependencies"]
    return {Requirement(d).name: Requirement(d) for d in deps}


@pytest.mark.parametrize("package", sorted(ADVISORY_MINIMUMS))
def test_pinned_minimums_are_past_the_known_advisories_and_installed(package):
    requirement = _dependencies()[package]
    floor, why = ADVISORY_MINIMUMS[package]
    assert _minimum(requirement) is not None and _minimum(requirement) >= Version(floor), \
        f"pyproject.toml pins {requirement}; needs >= {floor}: {why}"
    installed = Version(re.sub(r"\+.*$", "", version(package)))
    assert requirement.specifier.contains(installed, prereleases=True), f"{package} {installed} vs {requirement}"
