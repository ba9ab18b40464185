"""A recorded benchmark: every network of a finite space trained once, its whole learning curve kept.

Tabular benchmarks (NAS-Bench-201, HPOBench) and Syne Tune's simulator backend make search
strategies comparable with many seeds: train every network once, keep every epoch, then replay
searches against the table in seconds. This module is the table for our own spaces:

- :func:`record_from_runs` builds it from a sweep's MLflow trial runs (``resnetx record``);
- :func:`write_record` / :func:`read_record` keep it in one CSV file, one row per network, seed
  and epoch, headed by ``#`` lines holding its provenance as JSON (space name and definition hash,
  code version, machine, torch version, seeds, date), so ``pandas.read_csv(comment="#")`` reads
  the table as it is;
- :class:`Record` answers the replay's questions: the curve of a network (by its trial key, the
  runs' ``config_hash``) for a seed, the true front, the total compute.

The record's unit of compute is the recorded ``epoch_time_s``: a replayed trial's cost is the sum
of the epoch times it "ran". Mlflow is imported only by :func:`record_from_runs`.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from resnetx.errors import ConfigError

FORMAT = 1
MAGIC = "# resnetx-record"
CURVE_COLUMNS = ("val_acc", "val_loss", "train_loss", "epoch_time_s")
STATIC_COLUMNS = ("params", "flops", "latency_ms")
KEY_COLUMNS = ("config_hash", "replicate", "seed", "epoch")


@dataclass
class Record:
    """The table (one row per network, replicate and epoch) and where it came from."""

    frame: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame = self.frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
        self._curves = {key: group for key, group in self.frame.groupby(["config_hash", "replicate"], sort=False)}
        self._seeds: dict[str, dict[int, int]] = {}
        for (key, replicate), group in self._curves.items():
            self._seeds.setdefault(str(key), {})[int(group["seed"].iloc[0])] = int(replicate)

    # -- questions the replay asks ------------------------------------------------------------
    @property
    def space(self) -> str:
        return str(self.provenance.get("space", ""))

    @property
    def keys(self) -> list[str]:
        return sorted(self._seeds)

    @property
    def epochs(self) -> int:
        return int(self.frame["epoch"].max()) if len(self.frame) else 0

    def __contains__(self, key: object) -> bool:
        return key in self._seeds

    def curve(self, key: str, seed: int | None = None) -> pd.DataFrame:
        """The recorded epochs of network ``key``: the replicate trained with ``seed`` when there
        is one, else the first replicate (the record's primary seed). Raises naming the key when
        the record does not hold the network."""
        if key not in self._seeds:
            raise ConfigError("record", key, f"is not a network of the record of space {self.space!r} "
                                             f"({len(self._seeds)} networks); the replayed space must be the record's")
        replicates = self._seeds[key]
        replicate = replicates.get(int(seed), 0) if seed is not None else 0
        return self._curves[(key, replicate)]

    def final(self, replicate: int = 0) -> pd.DataFrame:
        """One row per network: its last epoch of ``replicate`` (networks without it are left out)."""
        rows = self.frame[self.frame["replicate"] == replicate]
        return rows.loc[rows.groupby("config_hash")["epoch"].idxmax()].reset_index(drop=True)

    def total_compute(self) -> float:
        """Seconds to train every network of the record once to the end (primary replicate)."""
        return float(self.frame.loc[self.frame["replicate"] == 0, "epoch_time_s"].sum())

    def replicate_spread(self) -> pd.DataFrame:
        """Networks with two or more replicates: final val_acc of each and their difference."""
        last = self.frame[self.frame["epoch"] == self.frame.groupby(["config_hash", "replicate"])["epoch"]
                          .transform("max")]
        wide = last.pivot_table(index="config_hash", columns="replicate", values="val_acc")
        wide = wide.dropna()
        if wide.shape[1] < 2:
            return pd.DataFrame(columns=["config_hash", "first", "second", "difference"])
        out = pd.DataFrame({"config_hash": wide.index, "first": wide[0].to_numpy(), "second": wide[1].to_numpy()})
        out["difference"] = out["second"] - out["first"]
        return out.reset_index(drop=True)


# -- the file -----------------------------------------------------------------------------------
def write_record(record: Record, path: str | Path) -> Path:
    """One CSV: the provenance as a ``#`` JSON line, then the table (written whole, then renamed).

    A path that cannot be written is a one-line :class:`ConfigError` naming ``--out`` and the OS's
    reason, and leaves no temporary file behind (``/proc/x.csv`` printed the temp file's name and
    exited 1).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", newline="") as handle:
            handle.write(f"{MAGIC} {FORMAT}\n# {json.dumps(record.provenance, sort_keys=True)}\n")
            record.frame.to_csv(handle, index=False, float_format="%.6g")
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    return target


def check_writable(path: str | Path) -> None:
    """Fail before minutes of reading runs when ``--out`` cannot be written (the same one-line error)."""
    target = Path(path)
    probe = target.with_name(f".{target.name}.probe")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _unwritable(path: str | Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    return ConfigError("--out", str(path), f"cannot be written ({reason}); name a file in a writable folder")


def read_record(path: str | Path) -> Record:
    """The record at ``path``; a one-line error naming the file when it is not one."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError("--record", str(path), "no such file (write one with `resnetx record`)")
    with open(source) as handle:
        magic, meta = handle.readline().strip(), handle.readline().strip()
    if not magic.startswith(MAGIC):
        raise ConfigError("--record", str(path), f"is not a resnetx record (its first line must start with {MAGIC!r})")
    version = magic[len(MAGIC):].strip()
    if version != str(FORMAT):
        raise ConfigError("--record", str(path), f"has format {version or '?'}; this version reads format {FORMAT}")
    try:
        provenance = json.loads(meta.lstrip("#").strip())
    except ValueError:
        raise ConfigError("--record", str(path), "its provenance line is not JSON") from None
    frame = pd.read_csv(source, comment="#", dtype={"config_hash": str})
    missing = [c for c in (*KEY_COLUMNS, *CURVE_COLUMNS, *STATIC_COLUMNS) if c not in frame.columns]
    if missing:
        raise ConfigError("--record", str(path), f"lacks the columns {', '.join(missing)}")
    check_rows(frame, str(path))
    return Record(frame, provenance)


HEADER_LINES = 3  # the magic line, the provenance line, the column names


def check_rows(frame: pd.DataFrame, path: str) -> None:
    """Every row has its key and curve values (a truncated or hand-edited file names its first bad line)."""
    # what every recorded epoch has (complete_curve); losses and latency may be missing by design
    numeric = frame[[*KEY_COLUMNS[1:], "val_acc", "epoch_time_s", "params"]].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().any(axis=1) | frame["config_hash"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        empty = [c for c in ("config_hash", *numeric.columns)
                 if pd.isna(frame.loc[row, c] if c == "config_hash" else numeric.loc[row, c])]
        raise ConfigError("--record", path, f"line {row + HEADER_LINES + 1} has no valid {', '.join(empty)} "
                          f"({int(bad.sum())} such rows; a truncated file? write it again with `resnetx record`)")


# -- building one from MLflow -------------------------------------------------------------------
def curve_rows(run: Any, histories: dict[str, list[Any]], replicate: int) -> list[dict[str, Any]]:
    """The rows of one finished trial run (pure: the run and its metric histories as MLflow gives them)."""
    by_epoch: dict[int, dict[str, Any]] = {}
    for name, points in histories.items():
        for point in points:
            by_epoch.setdefault(int(point.step), {})[name] = float(point.value)
    params, metrics = run.data.params, run.data.metrics
    static = {name: float(metrics[name]) if name in metrics else np.nan for name in STATIC_COLUMNS}
    model = {k: v for k, v in params.items() if k.startswith("model.")}
    rows = []
    for epoch in sorted(by_epoch):
        values = by_epoch[epoch]
        rows.append({"config_hash": run.data.tags.get("config_hash", ""), "replicate": replicate,
                     "seed": int(params.get("train.seed", -1)), "epoch": epoch,
                     **{c: values.get(c, np.nan) for c in CURVE_COLUMNS}, **static, **model})
    return rows


def complete_curve(rows: Sequence[dict[str, Any]], epochs: int) -> bool:
    """Every epoch 1..epochs present, each with a finite accuracy and epoch time."""
    seen = {r["epoch"] for r in rows if np.isfinite(r["val_acc"]) and np.isfinite(r["epoch_time_s"])}
    return seen >= set(range(1, epochs + 1))


def record_from_runs(tracking_uri: str, experiment: str, space: Any,
                     sweep_ids: Iterable[str] = ()) -> tuple[Record, dict[str, int]]:
    """The record of ``space`` from the finished trial runs of ``experiment`` (only ``sweep_ids``' if given).

    A network trained more than once with different seeds becomes replicates 0, 1, ... in the
    order the runs started (the primary sweep first); a second run with the same seed is left
    out. Runs whose curve lacks an epoch are left out and counted. Returns (record, counts).
    """
    from mlflow.tracking import MlflowClient

    from reports import schema
    from reports.runs import find_experiment, search_all
    from sweep.tracking.store import with_retry

    client = MlflowClient(tracking_uri)
    experiment_id = find_experiment(client, experiment, tracking_uri)
    sweeps = list(sweep_ids)
    filters = [f"tags.{schema.TAG_SPACE} = '{space.name}'", f"tags.{schema.TAG_STATUS} = '{schema.STATUS_FINISHED}'"]
    runs = [r for r in search_all(client, experiment_id, " and ".join(filters), order_by=["attributes.start_time ASC"])
            if r.data.tags.get(schema.TAG_ROLE, schema.ROLE_TRIAL) == schema.ROLE_TRIAL
            and (not sweeps or r.data.tags.get(schema.TAG_PARENT) in sweeps)]
    if not runs:
        raise ConfigError("--space", space.name, f"no finished trial runs of this space in experiment {experiment!r}")
    epochs = max(int(r.data.params.get("train.epochs", 0)) for r in runs)
    counts = {"runs": len(runs), "incomplete": 0, "same_seed_again": 0}
    rows: list[dict[str, Any]] = []
    seeds: dict[str, list[int]] = {}
    sweep_of: dict[str, str] = {}
    for run in runs:
        key, seed = run.data.tags.get(schema.TAG_CONFIG_HASH, ""), int(run.data.params.get("train.seed", -1))
        if seed in seeds.get(key, []):
            counts["same_seed_again"] += 1
            continue
        histories = {name: with_retry(lambda n=name, r=run.info.run_id: client.get_metric_history(r, n))
                     for name in CURVE_COLUMNS}
        curve = curve_rows(run, histories, replicate=len(seeds.get(key, [])))
        if not complete_curve(curve, epochs):
            counts["incomplete"] += 1
            continue
        seeds.setdefault(key, []).append(seed)
        sweep_of[run.data.tags.get(schema.TAG_PARENT, "")] = run.data.tags.get(schema.TAG_SEARCH, "")
        rows.extend(r for r in curve if r["epoch"] <= epochs)
    frame = pd.DataFrame(rows)
    counts["networks"] = len(seeds)
    counts["replicated"] = sum(len(s) > 1 for s in seeds.values())
    provenance = provenance_of(space, epochs, counts, sorted(sweep_of))
    return Record(frame, provenance), counts


def provenance_of(space: Any, epochs: int, counts: dict[str, int], sweeps: list[str]) -> dict[str, Any]:
    """Where a record came from: enough to tell whether it still describes this code and space."""
    import torch

    from reports.provenance import package_versions, utc_now

    return {"format": FORMAT, "space": space.name, "space_definition_sha256": space.definition_hash(),
            "epochs": epochs, "networks": counts.get("networks", 0), "replicated": counts.get("replicated", 0),
            "sweep_run_ids": sweeps, "code_version": code_version(), "machine": machine(),
            "torch": torch.__version__,
            "packages": package_versions(), "created": utc_now(),
            "seeds": "train.seed of each row (derived by the searcher from the sweep seed and the network)"}


def code_version() -> str:
    """``git describe`` of the checkout this runs from (``-dirty`` with uncommitted changes), else unknown."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    """CPU model, core count and OS: what the recorded epoch times were measured on."""
    import os

    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
