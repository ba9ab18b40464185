"""Zero-cost proxies of every network of the committed records, cached for bench/fidelity.py.

For each record (``bench/records/*.csv``) and each of its networks (the config of its rows'
``model.*`` columns), this builds the network with ``resnetx.build_model`` under a fixed init seed
and scores it with ``resnetx.zero_cost`` (synflow, grad_norm, NASWOT, jacob_cov) on one fixed
minibatch of the record's own data: 64 images of the record space's training split (its
``data:`` section: Fashion-MNIST at 16x16, the same subset and split), drawn with numpy seed 0
and normalised as training does, no augmentation. Every network is scored at init seed 0; a fixed
subset (32 networks per record, numpy seed 0) again at init seeds 1 and 2 with the same minibatch,
so that bench/fidelity.py can state the proxies' own init-seed noise. Each built network's
parameter count is checked against the record's ``params``.

    .venv/bin/python bench/zero_cost.py            # writes bench/results/zero_cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from resnetx import build_model, count_params
from resnetx import zero_cost as zc
from search_spaces.loader import load_space
from sweep.config.experiment import DataConfig
from sweep.data.augment import normalizer, to_input
from sweep.data.load import load_dataset
from sweep.tracking.record import read_record

HERE = Path(__file__).resolve().parent
RECORDS = sorted((HERE / "records").glob("*.csv"))
OUT = HERE / "results" / "zero_cost.json"
BATCH = 64
BATCH_SEED = 0
INIT_SEED = 0
REPEAT_SEEDS = (1, 2)
REPEAT_NETWORKS = 32


def model_config(row: pd.Series) -> dict[str, Any]:
    """The ``model.*`` columns of a record row as ``build_model`` fields (plain Python values)."""
    fields: dict[str, Any] = {}
    for column, value in row.items():
        name = str(column)
        if not name.startswith("model."):
            continue
        value = value.item() if hasattr(value, "item") else value
        fields[name[len("model."):]] = json.loads(value) if name == "model.num_nodes" else value
    return fields


def minibatch(space_name: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The fixed minibatch of a record's training split, normalised as the training loop does."""
    data_cfg = DataConfig(**load_space(space_name).spec.data)
    data = load_dataset(data_cfg)
    chosen = np.sort(np.random.default_rng(BATCH_SEED).choice(len(data.train_y), BATCH, replace=False))
    shift, scale = normalizer(data.mean, data.std, torch.device("cpu"))
    x = to_input(torch.from_numpy(data.train_x[chosen]), shift, scale)
    y = torch.from_numpy(np.asarray(data.train_y[chosen], dtype=np.int64))
    info = {"data": data_cfg.model_dump(include={"name", "image_size", "subset", "val_fraction", "split_seed"}),
            "train_images": len(data.train_y), "batch": BATCH, "batch_seed": BATCH_SEED,
            "input_shape": list(x.shape[1:])}
    return x, y, info


def score(fields: dict[str, Any], seed: int, x: torch.Tensor, y: torch.Tensor, params: int) -> dict[str, float]:
    torch.manual_seed(seed)
    net = build_model(fields)
    if count_params(net) != params:
        raise RuntimeError(f"rebuilt network has {count_params(net)} parameters, the record says {params}: {fields}")
    return zc.all_proxies(net, x, y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="append", type=Path, help="a record CSV (default: every committed one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                                      "1 thread", "proxies": list(zc.PROXIES), "init_seed": INIT_SEED}
    for path in args.record or RECORDS:
        started = time.perf_counter()
        record = read_record(path)
        x, y, info = minibatch(record.space)
        final = record.final(0).set_index("config_hash")
        scores: dict[str, dict[str, float]] = {}
        for key, row in final.iterrows():
            scores[str(key)] = score(model_config(row), INIT_SEED, x, y, int(row["params"]))
        first_pass = time.perf_counter() - started
        subset = sorted(np.random.default_rng(0).choice(sorted(scores), REPEAT_NETWORKS, replace=False).tolist())
        repeats = {str(seed): {key: score(model_config(final.loc[key]), seed, x, y, int(final.loc[key, "params"]))
                               for key in subset} for seed in REPEAT_SEEDS}
        seconds = time.perf_counter() - started
        out[record.space] = {"record": path.name, **info, "networks": len(scores), "scores": scores,
                             "repeat_seeds": list(REPEAT_SEEDS), "repeats": repeats,
                             "seconds_all_networks": round(first_pass, 1), "seconds_total": round(seconds, 1)}
        print(f"{record.space}: {len(scores)} networks in {first_pass:.1f} s (data load included), "
              f"{len(subset)} again at seeds {REPEAT_SEEDS}; {seconds:.1f} s in all")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, allow_nan=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
