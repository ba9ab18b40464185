"""Batch augmentation on the training device: random crop with zero padding, horizontal flip.

Why not torchvision transforms: they work one image at a time in Python (and usually in
DataLoader worker processes); here a whole batch is cropped and flipped by one gather, on the
GPU when training there, driven by an explicit ``torch.Generator`` so a checkpoint can save
and restore the exact random stream. The streaming path (``sweep.data.stream``) applies the
same :class:`BatchAugment` to CPU batches in its DataLoader workers, with a generator seeded per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def default_padding(image_size: int) -> int:
    """CIFAR's classic 4 pixels at 32x32, scaled with the image (at least 1)."""
    return max(1, image_size // 8)


@dataclass(frozen=True)
class BatchAugment:
    """Random ``padding``-pixel crop and optional horizontal flip of an ``(N, C, H, W)`` batch."""

    padding: int
    flip: bool

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        if n == 0 or (self.padding == 0 and not self.flip):
            return x
        p, dev = self.padding, x.device
        padded = F.pad(x, (p, p, p, p)) if p else x
        off_y = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=dev)
        off_x = torch.randint(0, 2 * p + 1, (n, 1), generator=generator, device=dev)
        rows = off_y + torch.arange(h, device=dev)  # (n, h)
        cols = off_x + torch.arange(w, device=dev)  # (n, w)
        if self.flip:
            flipped = torch.rand((n, 1), generator=generator, device=dev) < 0.5
            cols = torch.where(flipped, cols.flip(1), cols)
        # One gather: out[b, c, i, j] = padded[b, c, rows[b, i], cols[b, j]].
        width = padded.shape[-1]
        flat = (rows[:, :, None] * width + cols[:, None, :]).reshape(n, 1, h * w)
        out = padded.reshape(n, padded.shape[1], -1).gather(2, flat.expand(-1, padded.shape[1], -1))
        return out.reshape(n, padded.shape[1], h, w)


def normalizer(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[Tensor, Tensor]:
    """(shift, scale) on the device so that ``(x_uint8 - shift) * scale`` is the normalised float image."""
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
    s = 1.0 / (torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0)
    return m, s


def to_input(x: Tensor, shift: Tensor, scale: Tensor, channels_last: bool = False) -> Tensor:
    """uint8 batch -> normalised float32 network input (optionally channels-last)."""
    out = (x.float() - shift) * scale
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out
