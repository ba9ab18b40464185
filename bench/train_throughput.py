"""Training throughput: ``sweep.training.loop.train`` vs a plain PyTorch loop with a torchvision DataLoader.

Same model, same data, same batch size, same optimizer and loss, in one process, alternating
(ours, then each baseline; the order flips every round), several rounds; the figure is the
median per-round ratio of training images/s (training phase only, first epoch of each run
skipped as warm-up). The baseline is what a torchvision tutorial does: a Dataset that turns
each array into a PIL image and applies RandomCrop(padding) / RandomHorizontalFlip / ToTensor
/ Normalize, batched by a DataLoader with ``--workers`` worker processes.

    .venv/bin/python bench/train_throughput.py                       # digits-tiny, CPU
    .venv/bin/python bench/train_throughput.py --workers 0 2 --rounds 5
    .venv/bin/python bench/train_throughput.py --set train.device=cuda --set train.channels_last=true
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from resnetx import build_model
from sweep.config.experiment import ExperimentConfig, load_experiment
from sweep.data.load import DatasetBundle, load_dataset
from sweep.training.loop import amp_dtype, make_optimizer, resolve_device, seed_everything, setup_torch, train

ROOT = Path(__file__).resolve().parents[1]


class ArrayImages(Dataset):
    """torchvision-style dataset over uint8 NCHW arrays: one PIL image and one transform per item."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        from PIL import Image

        img = self.x[i]
        pil = Image.fromarray(img[0]) if img.shape[0] == 1 else Image.fromarray(img.transpose(1, 2, 0))
        return self.transform(pil), int(self.y[i])


def baseline_loader(data: DatasetBundle, batch_size: int, workers: int, pin: bool) -> DataLoader:
    import torchvision.transforms as T

    from sweep.data.augment import default_padding

    steps = [T.RandomCrop(data.image_size, padding=default_padding(data.image_size))]
    if data.hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(data.mean, data.std)]
    return DataLoader(ArrayImages(data.train_x, data.train_y, T.Compose(steps)), batch_size=batch_size,
                      shuffle=True, num_workers=workers, pin_memory=pin, drop_last=False,
                      persistent_workers=workers > 0)


def baseline_images_per_s(cfg: ExperimentConfig, data: DatasetBundle, workers: int, epochs: int) -> float:
    """The plain loop: DataLoader batches -> device -> forward/backward/step. Returns median img/s."""
    tc = cfg.train
    device = resolve_device(tc.device)
    seed_everything(tc.seed)
    fmt = torch.channels_last if tc.channels_last else torch.preserve_format
    model = build_model(cfg.model).to(device=device, memory_format=fmt).train()
    optimizer = make_optimizer(list(model.parameters()), tc)
    dtype = amp_dtype(tc, device)
    loader = baseline_loader(data, tc.batch_size, workers, pin=device.type == "cuda")
    rates = []
    for _ in range(epochs):
        seen, started = 0, time.perf_counter()
        for x, y in loader:
            if len(y) < 2:
                continue
            x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y, label_smoothing=tc.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(seen / (time.perf_counter() - started))
    return statistics.median(rates[1:] or rates)


def ours_images_per_s(cfg: ExperimentConfig, data: DatasetBundle) -> float:
    setup_torch(cfg.train)
    result = train(cfg, data=data)
    rates = [h["images_per_s"] for h in result.history]
    return statistics.median(rates[1:] or rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "examples" / "digits-tiny.yaml"))
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measured run (the first is warm-up)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers of the baselines")
    args = parser.parse_args()
    cfg = load_experiment(args.config, [*args.sets, f"train.epochs={args.epochs}"])
    data = load_dataset(cfg.data)
    device = resolve_device(cfg.train.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"config: {args.config} {' '.join(args.sets)}; {data.summary()}; batch {cfg.train.batch_size}")
    ratios: dict[int, list[float]] = {w: [] for w in args.workers}
    for r in range(args.rounds):
        measured: dict[str, float] = {}
        order = ["ours", *args.workers] if r % 2 == 0 else [*args.workers, "ours"]
        for who in order:
            if who == "ours":
                measured["ours"] = ours_images_per_s(cfg, data)
            else:
                measured[f"w{who}"] = baseline_images_per_s(cfg, data, int(who), args.epochs)
        line = [f"round {r + 1}: ours {measured['ours']:.0f} img/s"]
        for w in args.workers:
            ratios[w].append(measured["ours"] / measured[f"w{w}"])
            line.append(f"DataLoader(workers={w}) {measured[f'w{w}']:.0f} img/s (x{ratios[w][-1]:.2f})")
        print(", ".join(line), flush=True)
    for w in args.workers:
        print(f"median ratio ours / DataLoader(workers={w}): {statistics.median(ratios[w]):.2f} "
              f"(rounds: {', '.join(f'{v:.2f}' for v in ratios[w])})")


if __name__ == "__main__":
    main()
