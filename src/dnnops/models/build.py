"""Build a model from its spec: the arguments a checkpoint carries to rebuild it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from dnnops.config import (
    CnnParams,
    EmbeddingBagParams,
    MlpParams,
    MobilenetParams,
    ModelConfig,
    ResnetParams,
    TextTransformerParams,
    TransformerParams,
    check_arch_params,
)
from dnnops.errors import ModelError
from dnnops.models.cnn import CNN
from dnnops.models.ensemble import Ensemble
from dnnops.models.mlp import MLP
from dnnops.models.mobilenet import MobileNetV2
from dnnops.models.resnet import ResNet18
from dnnops.models.text import EmbeddingBag, TextTransformer
from dnnops.models.transformer import FeatureTransformer
from dnnops.models.user import build_user_model


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    input_shape: tuple[int, ...]
    num_classes: int
    """Outputs per instance: one score per class, or 1 for regression."""
    params: dict[str, Any] = field(default_factory=dict)
    target_scale: tuple[float, float] | None = None
    """Regression: (mean, std) of the training target; the model answers ``raw * std +
    mean``, so its output is in the target's units (in ONNX too)."""
    ensemble: int = 1
    """Networks trained side by side and averaged (``model.ensemble``)."""
    category_blocks: tuple[tuple[int, int], ...] = ()
    """(first input, inputs) of each category column in the preprocessed row, for an MLP
    that embeds them (``embedding_dim``)."""
    vocab_size: int = 0
    """A text model's vocabulary (the stored tokenizer's); 0 for other inputs."""

    @classmethod
    def from_config(
        cls,
        model: ModelConfig,
        input_shape: list[int],
        num_classes: int,
        *,
        target_scale: tuple[float, float] | None = None,
        category_blocks: tuple[tuple[int, int], ...] = (),
        vocab_size: int = 0,
    ) -> ModelSpec:
        return cls(
            model.arch,
            tuple(input_shape),
            num_classes,
            dict(model.params),
            target_scale,
            model.ensemble,
            category_blocks,
            vocab_size,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        out["target_scale"] = list(self.target_scale) if self.target_scale else None
        out["category_blocks"] = [list(block) for block in self.category_blocks]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            arch=str(data["arch"]),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            num_classes=int(data["num_classes"]),
            params=dict(data.get("params", {})),
            target_scale=_scale(data.get("target_scale")),
            ensemble=int(data.get("ensemble", 1)),
            category_blocks=tuple(
                (int(start), int(width)) for start, width in data.get("category_blocks", [])
            ),
            vocab_size=int(data.get("vocab_size", 0)),
        )


def _scale(value: Any) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if value else None


class Regressor(nn.Module):
    """A network with one output, answered in the target's units: ``raw * std + mean``
    (the network itself learns the standardized target, which trains at any scale)."""

    def __init__(self, net: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.net = net
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw: torch.Tensor = self.net(x)  # (B, 1)
        return raw * self.std + self.mean


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised module; the caller seeds torch first for repeatable weights."""
    net: nn.Module
    if spec.ensemble > 1:
        classifier = spec.target_scale is None
        net = Ensemble(lambda: _network(spec), spec.ensemble, classifier=classifier)
    else:
        net = _network(spec)
    if spec.target_scale is None:
        return net
    return Regressor(net, *spec.target_scale)


def _network(spec: ModelSpec) -> nn.Module:
    features = math.prod(spec.input_shape)
    params = check_arch_params(ModelConfig(arch=spec.arch, params=spec.params), "model spec")
    if isinstance(params, MlpParams):
        return MLP(
            features,
            spec.num_classes,
            params.hidden,
            dropout=params.dropout,
            activation=params.activation,
            embedding_dim=params.embedding_dim,
            category_blocks=spec.category_blocks,
        )
    if isinstance(params, CnnParams):
        return CNN(
            spec.input_shape,
            spec.num_classes,
            params.channels,
            kernel_size=params.kernel_size,
            hidden=params.hidden,
            dropout=params.dropout,
        )
    if isinstance(params, TransformerParams):
        return FeatureTransformer(
            features,
            spec.num_classes,
            params.d_model,
            heads=params.heads,
            layers=params.layers,
            ff_dim=params.ff_dim,
            dropout=params.dropout,
        )
    if isinstance(params, ResnetParams | MobilenetParams) and len(spec.input_shape) != 3:
        raise ModelError(
            f"{spec.arch} needs images shaped (channels, height, width), got "
            f"{list(spec.input_shape)}: give it an image input (data.image)"
        )
    if isinstance(params, MobilenetParams):
        return MobileNetV2(
            spec.num_classes,
            in_channels=spec.input_shape[0],
            width=params.width,
            small_input=params.small_input,
            dropout=params.dropout,
        )
    if isinstance(params, ResnetParams):
        return ResNet18(
            spec.num_classes,
            in_channels=spec.input_shape[0],
            width=params.width,
            small_input=params.small_input,
        )
    if isinstance(params, TextTransformerParams | EmbeddingBagParams):
        if spec.vocab_size < 1 or len(spec.input_shape) != 1:
            raise ModelError(f"{spec.arch} reads token ids: give it a text input (data.text)")
        if isinstance(params, EmbeddingBagParams):
            return EmbeddingBag(spec.vocab_size, spec.num_classes, params.dim)
        return TextTransformer(
            spec.vocab_size,
            spec.input_shape[0],
            spec.num_classes,
            d_model=params.d_model,
            heads=params.heads,
            layers=params.layers,
            ff_dim=params.ff_dim,
            dropout=params.dropout,
        )
    return build_user_model(spec.arch, spec.params, spec.input_shape, num_classes=spec.num_classes)
