"""A small transformer encoder over features (FT-Transformer style).

Each scalar feature becomes a token ``x_i * w_i + b_i``; a learned [CLS] token is
prepended and its final state is classified. Attention is written with plain matmuls so
the graph exports to ONNX without the fused fast-path kernels of ``nn.MultiheadAttention``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FeatureTokenizer(nn.Module):
    def __init__(self, num_features: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_features, d_model) / math.sqrt(d_model))
        self.bias = nn.Parameter(torch.zeros(num_features, d_model))
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) / math.sqrt(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.unsqueeze(-1) * self.weight + self.bias  # (B, F, D)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)  # (B, F+1, D)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, each with a residual connection."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, *, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Linear(ff_dim, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, ignore: torch.Tensor | None = None) -> torch.Tensor:
        """``ignore``: True where a key must not be attended to (padding), broadcast to
        (B, heads, T, T)."""
        x = x + self.drop(self._attend(self.norm1(x), ignore))
        out: torch.Tensor = x + self.drop(self.ff(self.norm2(x)))
        return out

    def _attend(self, x: torch.Tensor, ignore: torch.Tensor | None) -> torch.Tensor:
        batch, tokens, width = x.shape
        head_dim = width // self.heads
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, hd)
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
        if ignore is not None:
            scores = scores.masked_fill(ignore, -1e9)
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, tokens, width)  # (B, T, D)
        projected: torch.Tensor = self.proj(out)
        return projected


class FeatureTransformer(nn.Module):
    def __init__(
        self,
        num_features: int,
        num_classes: int,
        d_model: int = 32,
        *,
        heads: int = 4,
        layers: int = 2,
        ff_dim: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.tokenizer = FeatureTokenizer(num_features, d_model)
        self.blocks = nn.Sequential(
            *(EncoderBlock(d_model, heads, ff_dim, dropout=dropout) for _ in range(layers))
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.tokenizer(x.flatten(1)))  # (B, F+1, D)
        logits: torch.Tensor = self.head(self.norm(tokens[:, 0]))  # (B, classes)
        return logits
