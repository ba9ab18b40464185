"""Shortcut projections, used where ``x_pred`` and node ``l`` differ in channels or resolution.

The stride is the product of the stage strides between ``pred`` and ``l``, so a skip that
crosses several stage boundaries projects straight to the right resolution. Pooling windows
use ``ceil_mode`` so every kind rounds odd sizes up, exactly like the strided 3x3 convs of
the units (``ceil(H / stride)``).
"""

from __future__ import annotations

from torch import Tensor, nn

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
