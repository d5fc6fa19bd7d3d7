"""A multilayer perceptron over the flattened instance, with an embedding per wide
category column when asked (``embedding_dim``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        *,
        dropout: float = 0.1,
        activation: str = "relu",
        embedding_dim: int = 0,
        category_blocks: Sequence[tuple[int, int]] = (),
    ) -> None:
        super().__init__()
        wide = [(s, w) for s, w in category_blocks if embedding_dim and w > embedding_dim]
        self.blocks = wide
        """(first input, inputs) of each category column that is embedded."""
        self.embeddings = nn.ModuleList(nn.Linear(w, embedding_dim, bias=False) for _, w in wide)
        covered = {i for s, w in wide for i in range(s, s + w)}
        self.kept: torch.Tensor
        kept = [i for i in range(in_features) if i not in covered]
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.long), persistent=False)
        layers: list[nn.Module] = [nn.Flatten()]
        width = len(kept) + embedding_dim * len(wide)
        for size in hidden:
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blocks:  # (B, inputs) -> (B, kept + embedding_dim x blocks)
            flat = x.flatten(1)
            parts = [flat.index_select(1, self.kept)]
            for (start, width), embed in zip(self.blocks, self.embeddings, strict=True):
                parts.append(embed(flat[:, start : start + width]))
            x = torch.cat(parts, dim=1)
        logits: torch.Tensor = self.net(x)  # (B, *shape) -> (B, classes)
        return logits
