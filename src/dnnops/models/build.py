"""Build a model from its spec: the arguments a checkpoint carries to rebuild it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from dnnops.config import CnnParams, MlpParams, ModelConfig, TransformerParams, check_arch_params
from dnnops.models.cnn import CNN
from dnnops.models.mlp import MLP
from dnnops.models.transformer import FeatureTransformer
from dnnops.models.user import build_user_model


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    input_shape: tuple[int, ...]
    num_classes: int
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, model: ModelConfig, input_shape: list[int], num_classes: int) -> ModelSpec:
        return cls(model.arch, tuple(input_shape), num_classes, dict(model.params))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            arch=str(data["arch"]),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            num_classes=int(data["num_classes"]),
            params=dict(data.get("params", {})),
        )


def build_model(spec: ModelSpec) -> nn.Module:
    """A freshly initialised module; the caller seeds torch first for repeatable weights."""
    features = math.prod(spec.input_shape)
    params = check_arch_params(ModelConfig(arch=spec.arch, params=spec.params), "model spec")
    if isinstance(params, MlpParams):
        return MLP(features, spec.num_classes, params.hidden, params.dropout, params.activation)
    if isinstance(params, CnnParams):
        return CNN(
            spec.input_shape,
            spec.num_classes,
            params.channels,
            params.kernel_size,
            params.hidden,
            params.dropout,
        )
    if isinstance(params, TransformerParams):
        return FeatureTransformer(
            features,
            spec.num_classes,
            params.d_model,
            params.heads,
            params.layers,
            params.ff_dim,
            params.dropout,
        )
    return build_user_model(spec.arch, spec.params, spec.input_shape, spec.num_classes)
