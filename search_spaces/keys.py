"""Trial keys: when two samples would train the same network the same way.

A sweep must never train the same thing twice; it reuses the earlier result instead. Two
samples are the same trial when their models have the same canonical hash (the same network,
however its ids were written) and their data and training settings agree on everything that
can change the outcome. Settings that only say *where* or *how fast* a trial runs (device,
threads, ``torch.compile``, checkpoint cadence, whether a dataset may be downloaded, where a
named dataset is cached) do not count, and neither does
``train.seed`` -- the sweep derives seeds itself -- unless the space makes the seed an axis
(``replicates`` or a searched ``train.seed``), where replicate runs must stay distinct.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from search_spaces.walk import build_model_config

IGNORED_TRAIN: tuple[str, ...] = ("seed", "device", "num_threads", "compile", "checkpoint_every")
IGNORED_DATA: tuple[str, ...] = ("download",)


def trial_key(config: Mapping[str, Any], keep_seed: bool = False) -> str:
    """16 hex digits of SHA-256 over (model canonical hash, data, training settings)."""
    model_hash = build_model_config(dict(config.get("model") or {})).canonical_hash()
    data = {k: v for k, v in (config.get("data") or {}).items() if k not in IGNORED_DATA}
    if data.get("name") != "imagefolder":  # a cache location, except where the folder *is* the dataset
        data.pop("root", None)
    train = {k: v for k, v in (config.get("train") or {}).items()
             if k not in IGNORED_TRAIN or (keep_seed and k == "seed")}
    blob = json.dumps({"model": model_hash, "data": data, "train": train}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
