"""A model's penultimate layer: what its last linear layer (the head) reads.

Every built-in image and text model ends in one linear head (``fc`` in torchvision's
layout, ``head`` in the text models), so the head's input is the representation the model
classifies from. ``EmbeddingTap`` answers it beside the logits, projected to a few
principal directions, so one forward pass serves both the prediction and its monitoring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def head_of(model: nn.Module) -> nn.Linear | None:
    """The model's last linear layer (registration order), None when it has none."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def penultimate(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The head's inputs for the rows of ``x`` (rows x the head's in_features)."""
    head = head_of(model)
    if head is None:
        raise ValueError("the model has no linear layer to read a penultimate layer from")
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        captured.append(inputs[0].detach().reshape(len(inputs[0]), -1))

    handle = head.register_forward_pre_hook(keep)
    try:
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                model(torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size])))
    finally:
        handle.remove()
    return torch.cat(captured).numpy().astype("float64")


class EmbeddingTap(nn.Module):
    """``model`` answering ``(logits, (h - mean) @ components.T)``, h its head's input."""

    def __init__(self, model: nn.Module, mean: np.ndarray, components: np.ndarray) -> None:
        super().__init__()
        head = head_of(model)
        if head is None:
            raise ValueError("the model has no linear layer to read a penultimate layer from")
        self.model = model
        self.head = head
        self.mean: torch.Tensor
        self.components: torch.Tensor
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("components", torch.as_tensor(components, dtype=torch.float32).T)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        handle = self.head.register_forward_pre_hook(
            lambda _module, inputs: captured.append(inputs[0])
        )
        try:
            logits: torch.Tensor = self.model(x)
        finally:
            handle.remove()
        hidden = captured[0].reshape(captured[0].shape[0], -1)
        embedding: torch.Tensor = (hidden - self.mean) @ self.components
        return logits, embedding
