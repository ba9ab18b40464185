"""Classifier head: (final norm for pre-activation nets) -> global average pool -> fc."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ClassifierHead(nn.Module):
    """Pool and classify. Pre-activation networks end un-normalised, so they get BN -> ReLU."""

    def __init__(self, cin: int, num_classes: int, final_norm: bool, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True)) if final_norm else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.pool(self.norm(x)), 1)
        return self.fc(self.drop(x))
