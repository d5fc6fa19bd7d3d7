"""A small convolutional network for image-shaped instances (channels, height, width)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dnnops.errors import ModelError


class CNN(nn.Module):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        *,
        kernel_size: int = 3,
        hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ModelError(
                "the cnn needs instances shaped (channels, height, width), "
                f"got {list(input_shape)}; set model.input_shape, "
                "for example [1, 8, 8] for builtin:digits"
            )
        in_channels, height, width = input_shape
        blocks: list[nn.Module] = []
        for out_channels in channels:
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
            ]
            if height >= 2 and width >= 2:
                blocks.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * height * width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.features(x))  # (B, C, H, W) -> (B, classes)
        return logits
