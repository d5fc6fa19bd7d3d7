"""The benchmark MLP in plain torch, with dnnops's parameter names, for servers whose
virtual environments do not have dnnops installed (LitServe, BentoML)."""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file
from torch import nn


class MLP(nn.Module):
    def __init__(self, features: int, hidden: list[int], classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(0.0)]
            width = size
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def load_from_environment() -> MLP:
    """BENCH_FEATURES, BENCH_HIDDEN (comma separated) and BENCH_WEIGHTS (safetensors)."""
    hidden = [int(h) for h in os.environ["BENCH_HIDDEN"].split(",")]
    model = MLP(int(os.environ["BENCH_FEATURES"]), hidden)
    model.load_state_dict(load_file(os.environ["BENCH_WEIGHTS"]))
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    return model.eval()
