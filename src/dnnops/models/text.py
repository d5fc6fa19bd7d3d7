"""Models over token ids: a transformer encoder and an embedding-bag baseline.

Ids arrive as float32 (the one input type every path serves; ids below 2**24 are exact)
and are cast to int64 here; id 0 is ``[PAD]`` and is masked out, id 2 (``[CLS]``) opens
every text and its final state is classified.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dnnops.models.transformer import EncoderBlock

PAD = 0


class EmbeddingBag(nn.Module):
    """The mean of the text's token embeddings, then a linear layer: the baseline a
    transformer has to beat (fastText's model)."""

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.head = nn.Linear(dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim): the text's mean embedding, pads left out."""
        ids = x.long()
        present = (ids != PAD).unsqueeze(-1).float()
        summed = (self.embedding(ids) * present).sum(dim=1)
        mean: torch.Tensor = summed / present.sum(dim=1).clamp(min=1.0)
        return mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.embed(x))
        return logits


class TextTransformer(nn.Module):
    """Token and position embeddings, pre-norm encoder layers that do not attend to pads,
    and the [CLS] token's final state classified."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        num_classes: int,
        *,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.positions = nn.Parameter(torch.randn(1, max_length, d_model) / math.sqrt(d_model))
        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, heads, ff_dim, dropout=dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d_model): the [CLS] token's final state (the penultimate layer)."""
        ids = x.long()
        hidden = self.tokens(ids) + self.positions[:, : ids.shape[1]]
        ignore = (ids == PAD)[:, None, None, :]  # (B, 1, 1, T): no query attends to a pad
        for block in self.blocks:
            hidden = block(hidden, ignore)
        cls: torch.Tensor = self.norm(hidden[:, 0])
        return cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.embed(x))
        return logits
