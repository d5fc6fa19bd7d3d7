"""MobileNetV2 with torchvision's parameter names (``features.0.0``, ``features.1.conv.0.0``,
``features.18.0``, ``classifier.1``, ...), so a torchvision ``mobilenet_v2`` state dict a
user has loads into it as it is (``train.init_from``), without torchvision installed.

Inverted residual blocks (Sandler et al., 2018): a 1x1 expansion, a depthwise 3x3 and a
linear 1x1 projection, with a shortcut where the shape allows. A fifth of ResNet-18's
multiply-adds at 224x224 for the same top-1 on ImageNet; the model for a CPU or a phone.
``width`` scales the channels (1.0 is torchvision's; its weights load only at 1.0);
``small_input`` makes the stem and the first downsampling stride 1, for images of 32-64
pixels (the shapes, and so the weights, stay the same).
"""

from __future__ import annotations

import torch
from torch import nn

STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
"""(expansion, channels, blocks, first stride) of each stage: torchvision's."""
LAST_CHANNELS = 1280


def divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of 8, never below 90% of ``value`` (torchvision's)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu(inputs: int, outputs: int, *, kernel: int = 3, stride: int = 1,
                 groups: int = 1) -> nn.Sequential:  # fmt: skip
    """torchvision's ``Conv2dNormActivation``: a convolution, batch norm and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inputs: int, outputs: int, *, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        self.use_res_connect = stride == 1 and inputs == outputs
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu(inputs, hidden, kernel=1))
        layers += [
            conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, outputs, 1, 1, 0, bias=False),
            nn.BatchNorm2d(outputs),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    def __init__(
        self,
        num_classes: int,
        *,
        in_channels: int = 3,
        width: float = 1.0,
        small_input: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels = divisible(32 * width)
        last = divisible(LAST_CHANNELS * max(1.0, width))
        layers: list[nn.Module] = [
            conv_bn_relu(in_channels, channels, stride=1 if small_input else 2)
        ]
        for stage, (expansion, wide, blocks, stride) in enumerate(STAGES):
            outputs = divisible(wide * width)
            first_stride = 1 if small_input and stage == 1 else stride
            for block in range(blocks):
                layers.append(
                    InvertedResidual(
                        channels,
                        outputs,
                        stride=first_stride if block == 0 else 1,
                        expansion=expansion,
                    )
                )
                channels = outputs
        layers.append(conv_bn_relu(channels, last, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1280 x max(1, width)): the pooled features the classifier reads."""
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return torch.flatten(pooled, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.embed(x))
        return logits
