"""Several networks of one architecture, trained side by side and answered as one.

A few seeds averaged is the cheapest reliable gain on tables (RealMLP and TabM both rely
on it): each member learns on its own loss from its own initial weights, and the answer
is their mean. Training sees every member's output, so the objective can score each one
(``(B, members, outputs)``); evaluation and the exported graph see the mean: of the
outputs for a regressor, of the probabilities for a classifier, returned as logits
(log-probabilities), so softmax and argmax downstream are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, build: Callable[[], nn.Module], members: int, *, classifier: bool) -> None:
        super().__init__()
        self.members = nn.ModuleList(build() for _ in range(members))
        self.classifier = classifier
        self._log_members = math.log(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([member(x) for member in self.members], dim=1)  # (B, K, C)
        if self.training:
            return outputs
        if not self.classifier:
            return outputs.mean(dim=1)
        log_probabilities = torch.log_softmax(outputs, dim=-1)
        return torch.logsumexp(log_probabilities, dim=1) - self._log_members
