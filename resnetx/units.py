"""Residual units: the ``unit_l`` of every node.

Every unit maps ``(in_channels, H, W)`` to ``(out_channels, H/stride, W/stride)`` through a
hidden width, and declares whether the network applies an activation after the residual
addition (``post_activation``: torchvision's post-activation blocks) or not (pre-activation
and linear-bottleneck units). Attribute names of ``basic``/``bottleneck`` follow torchvision
(``conv1``, ``bn1``, ...) so its checkpoints map one tensor to one tensor.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)


class Unit(nn.Module):
    """Base class: subclasses set ``post_activation`` and name their last norm ``last_bn``."""

    post_activation: ClassVar[bool] = True

    def last_norm(self) -> nn.BatchNorm2d:
        """The norm whose scale is zeroed by ``zero_init_last`` (unit starts as the identity)."""
        raise NotImplementedError


class BasicUnit(Unit):
    """torchvision ``BasicBlock`` body: 3x3 (stride) -> BN -> ReLU -> 3x3 -> BN."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = conv(cin, hidden, kernel_size, stride)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv(hidden, cout, kernel_size)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2


class BottleneckUnit(Unit):
    """torchvision ``Bottleneck`` body (ResNet v1.5, stride on the 3x3): 1x1 -> kxk -> 1x1."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = conv(cin, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = conv(hidden, hidden, kernel_size, stride)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = conv(hidden, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3


class PreActBasicUnit(Unit):
    """Pre-activation basic unit (He et al. 2016): BN -> ReLU -> 3x3 -> BN -> ReLU -> 3x3."""

    post_activation = False

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv(cin, hidden, kernel_size, stride)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv2 = conv(hidden, cout, kernel_size)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.relu(self.bn1(x)))
        return self.conv2(self.relu(self.bn2(x)))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2


class PreActBottleneckUnit(Unit):
    """Pre-activation bottleneck: (BN -> ReLU -> conv) x 3 with 1x1, kxk (stride), 1x1."""

    post_activation = False

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv(cin, hidden, 1)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv2 = conv(hidden, hidden, kernel_size, stride)
        self.bn3 = nn.BatchNorm2d(hidden)
        self.conv3 = conv(hidden, cout, 1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.relu(self.bn1(x)))
        x = self.conv2(self.relu(self.bn2(x)))
        return self.conv3(self.relu(self.bn3(x)))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3


class MBConvUnit(Unit):
    """MobileNetV2 inverted bottleneck, as in the seed: 1x1 expand -> depthwise kxk -> 1x1 linear."""

    post_activation = False

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = conv(cin, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = conv(hidden, hidden, kernel_size, stride, groups=hidden)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = conv(hidden, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.conv3(x))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3


class XceptionUnit(Unit):
    """Xception-style unit: two (ReLU -> depthwise kxk -> pointwise 1x1 -> BN) separable convs."""

    post_activation = False

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.dw1 = conv(cin, cin, kernel_size, stride, groups=cin)
        self.pw1 = conv(cin, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.dw2 = conv(hidden, hidden, kernel_size, groups=hidden)
        self.pw2 = conv(hidden, cout, 1)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn1(self.pw1(self.dw1(self.relu(x))))
        return self.bn2(self.pw2(self.dw2(self.relu(x))))

    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2
