"""What training minimises and how a held-out pass is scored, per task.

Classification: cross-entropy (optionally class-weighted) and accuracy. Regression: the
mean squared (or Huber) error of the standardized target (errors divided by the target's
std, so one learning rate fits a price in thousands and a ratio in tenths) and the mean
absolute error in the target's own units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass(frozen=True)
class Objective:
    task: Literal["classification", "regression"] = "classification"
    loss: Literal["cross_entropy", "mse", "huber"] = "cross_entropy"
    scale: float = 1.0
    """Regression: the target's std."""
    class_weight: torch.Tensor | None = None

    @property
    def score_name(self) -> str:
        """The held-out metric besides the loss: ``accuracy`` or ``mae``."""
        return "accuracy" if self.task == "classification" else "mae"

    def __call__(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss of a batch: ``outputs`` (B, classes) or (B, 1), ``y`` (B,)."""
        return self.total(outputs, y, weight=self.class_weight, reduction="mean")

    def total(
        self,
        outputs: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor | None = None,
        *,
        reduction: Literal["mean", "sum"] = "sum",
    ) -> torch.Tensor:
        if outputs.dim() == 3:  # an ensemble in training, (B, members, C): each member's loss
            members = outputs.shape[1]
            outputs = outputs.reshape(-1, outputs.shape[2])
            y = y.repeat_interleave(members)
            total = self.total(outputs, y, weight, reduction=reduction)
            return total if reduction == "mean" else total / members
        if self.task == "classification":
            return nn.functional.cross_entropy(
                outputs.float(), y, weight=weight, reduction=reduction
            )
        if self.loss == "huber":  # its bend is in standardized units: scale first
            error = (outputs.float().reshape(-1) - y.float()) / self.scale
            return nn.functional.huber_loss(error, torch.zeros_like(error), reduction=reduction)
        # mean(((o - y) / s)^2) = mean((o - y)^2) / s^2: one kernel and one scalar product
        # instead of four elementwise steps (a tenth of a small regressor's step)
        squared = nn.functional.mse_loss(
            outputs.float().reshape(-1), y.float(), reduction=reduction
        )
        return squared / (self.scale * self.scale)

    def score_sum(self, outputs: torch.Tensor, y: torch.Tensor) -> float:
        """Correct answers (classification) or the sum of absolute errors (regression)."""
        if self.task == "classification":
            return float((outputs.argmax(dim=1) == y).sum())
        return float((outputs.float().reshape(-1) - y.float()).abs().sum())
