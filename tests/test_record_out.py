"""``resnetx record --out`` a path that cannot be written: one line naming --out, exit 2, nothing left.

It printed the name of its temporary file and exited 1 (a new user's try, review of 7bd5730), and
only after reading every run of the store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from resnetx.errors import ConfigError
from sweep.tracking.record import Record, write_record


def test_the_cli_refuses_an_unwritable_out_before_reading_runs(tmp_path):
    runs = tmp_path / "never-made"
    done = subprocess.run([str(Path(sys.executable).with_name("resnetx")), "record", "--space", "fmnist-bench",
                           "--runs-dir", str(runs), "--out", "/proc/x.csv"], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["resnetx: error: --out: got '/proc/x.csv'; cannot be written (No such file or directory); "
                     "name a file in a writable folder"]
    assert not runs.exists()  # the store was not even opened


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "record.csv"
    target.mkdir()  # a folder where the file should go: the rename fails after the temp file is written
    frame = pd.DataFrame({"config_hash": ["a"], "replicate": [0], "seed": [0], "epoch": [1], "val_acc": [0.5]})
    record = Record(frame=frame, provenance={"space": "x"})
    with pytest.raises(ConfigError, match=r"^--out: got '.*record\.csv'; cannot be written"):
        write_record(record, target)
    assert sorted(p.name for p in folder.iterdir()) == ["record.csv"]
