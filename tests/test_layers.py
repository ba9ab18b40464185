"""The layering of ``sweep/`` is a contract the suite enforces, not a convention.

Two checks: import-linter's contracts in pyproject.toml (layers config -> data -> training ->
tracking -> search -> tune -> simulator -> api -> cli, the package rules, and no import circle
in any package), and the stronger runtime fact that importing the training layer and the
search algorithms in a fresh interpreter loads neither Ray nor MLflow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(linter)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_training_layer_and_search_algorithms_load_neither_ray_nor_mlflow():
    code = ("import sys; import sweep.training.loop, sweep.training.checkpoint, sweep.data.load, "
            "sweep.config.experiment, sweep.search.core, sweep.search.rungs, sweep.search.proposers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'mlflow')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_stand_in_trainable_is_not_in_the_shipped_cli():  # the shipped ones: train and replay
    code = "from sweep.tune.trainables import TRAINABLES; import sweep.cli.main; print(sorted(TRAINABLES))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['replay', 'resnetx']"


def test_dataset_metadata_and_readers_name_the_same_datasets():
    from sweep.config.datasets import DATASETS
    from sweep.data.registry import READERS

    assert set(DATASETS) == set(READERS)
