"""Stems: turn the image into node 0 (``stem_width`` channels)."""

from __future__ import annotations

from torch import Tensor, nn

from resnetx.units import conv


class ImageNetStem(nn.Module):
    """torchvision's stem: 7x7/2 conv -> BN -> ReLU -> 3x3/2 max-pool (total stride 4)."""

    reduction = 4

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.conv1 = conv(cin, width, 7, stride=2)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class DeepStem(nn.Module):
    """ResNet-C stem (Bag of Tricks): three 3x3 convs (first stride 2) then max-pool (stride 4)."""

    reduction = 4

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        mid = max(width // 2, 1)
        self.conv1 = conv(cin, mid, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = conv(mid, mid, 3)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv(mid, width, 3)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.maxpool(self.relu(self.bn3(self.conv3(x))))


class CifarStem(nn.Module):
    """Small-image stem: one 3x3/1 conv -> BN -> ReLU, no pooling (stride 1)."""

    reduction = 1

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.conv1 = conv(cin, width, 3)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn1(self.conv1(x)))
