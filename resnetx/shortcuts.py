"""Shortcuts used where ``x_pred`` and node ``l`` differ in channels or resolution.

The stride is the product of the stage strides between ``pred`` and ``l``, so a skip that
crosses several stage boundaries projects straight to the right resolution. Pooling windows
use ``ceil_mode`` so every kind rounds odd sizes up, exactly like the strided 3x3 convs of
the units (``ceil(H / stride)``); the zero-padded shortcut's subsampling ``x[..., ::s, ::s]``
keeps ``ceil(H / s)`` rows too.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from resnetx.errors import ConfigError
from resnetx.units import conv


class ProjectionShortcut(nn.Module):
    """torchvision's ``downsample``: 1x1 conv with stride -> BN."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv = conv(cin, cout, 1, stride)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class _PooledShortcut(nn.Module):
    """Pool to the target resolution, then 1x1 conv -> BN (no information is skipped by stride)."""

    def __init__(self, pool: nn.Module, cin: int, cout: int) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(self.pool(x)))


class AvgPoolShortcut(_PooledShortcut):
    """ResNet-D shortcut: average-pool (stride) -> 1x1 conv -> BN."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        pool = (nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                if stride > 1 else nn.Identity())
        super().__init__(pool, cin, cout)


class MaxPoolShortcut(_PooledShortcut):
    """Max-pool (stride) -> 1x1 conv -> BN."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        pool = nn.MaxPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
        super().__init__(pool, cin, cout)


class ZeroPadShortcut(nn.Module):
    """He et al. (2016) option A, the CIFAR ResNets' shortcut: subsample, then zero-pad channels.

    Parameter-free, which is what makes ResNet-20/32/44/56/110 have the paper's parameter
    counts (a projection adds a 1x1 conv + BN at every stage boundary). Keeping every
    ``stride``-th pixel is the stride-``s`` 1x1 sampling grid of a projection, so a skip that
    spans several stages (stride 4 = two stage boundaries) takes every 4th pixel. ``pred``'s
    channels stay the first ``cin`` channels; the extra ``cout - cin`` are zeros. Channels can
    only be padded, never dropped: a narrowing skip is refused (the config validates this first).
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cout < cin:
            raise ConfigError("shortcut", "zeropad", f"pads channels and cannot drop them ({cin} -> {cout}); "
                              "use projection")
        self.cin, self.cout, self.stride = cin, cout, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.cout > self.cin:
            x = F.pad(x, (0, 0, 0, 0, 0, self.cout - self.cin))
        return x

    def extra_repr(self) -> str:
        return f"{self.cin}, {self.cout}, stride={self.stride}"
