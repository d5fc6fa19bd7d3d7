"""Starting weights: fine-tuning from a registered version or a weights file.

``train.init_from`` names a version (``NAME@REF``, resolved by the registry and passed
in as a ``WeightsResolver``: training sits below the registry) or a file on any fsspec
URL: safetensors, or a torch state dict (read with ``weights_only``: no pickled code),
for instance a torchvision ``resnet18`` one. Every tensor whose name and shape match the
new model is loaded; the rest (a head for other classes) starts fresh, and the run says
which. ``train.freeze: backbone`` then trains the last linear layer alone.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dnnops.errors import ConfigError, TrainingError
from dnnops.models.embedding_tap import head_of

VERSION_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*@[A-Za-z0-9_.-]+$")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class StartingWeights:
    """Tensors by parameter name, and where they came from."""

    state: dict[str, torch.Tensor]
    origin: str
    sha256: str


WeightsResolver = Callable[[str], StartingWeights]
"""``NAME@REF`` -> that version's weights (the registry's, verified)."""


@dataclass(frozen=True)
class StartReport:
    """What a run started from: for its lineage and its log."""

    origin: str
    sha256: str
    loaded: int
    fresh: list[str] = field(default_factory=list)
    """Parameters that did not come from the starting weights (a new head)."""
    frozen: int = 0
    """Parameters kept as loaded (``train.freeze: backbone``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "sha256": self.sha256,
            "loaded": self.loaded,
            "fresh": self.fresh,
            "frozen": self.frozen,
        }


def is_version_ref(value: str) -> bool:
    """``NAME@REF`` (a registered version), not a path or URL of a weights file."""
    return bool(VERSION_REF.match(value)) and not value.lower().endswith(WEIGHT_SUFFIXES)


def starting_weights(value: str, resolve: WeightsResolver | None) -> StartingWeights:
    if is_version_ref(value):
        if resolve is None:
            raise ConfigError(
                f"train.init_from: {value} names a registered version; train with dnnops "
                "train (or dnnops.Project), which reads the registry"
            )
        return resolve(value)
    return weights_file(value)


def weights_file(url: str) -> StartingWeights:
    """A safetensors file or a torch state dict (``weights_only``) at ``url``."""
    import fsspec

    try:
        with fsspec.open(url, "rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"train.init_from: cannot read {url}: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if url.lower().endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            return StartingWeights(load(data), url, digest)
        except SafetensorError as exc:
            raise ConfigError(f"train.init_from: {url} is not safetensors: {exc}") from None
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its own
        raise ConfigError(
            f"train.init_from: {url} is neither safetensors nor a torch state dict "
            f"(weights only): {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # a training checkpoint's
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise ConfigError(f"train.init_from: {url} holds no state dict of named tensors")
    state = {k.removeprefix("module."): v for k, v in loaded.items()}  # DataParallel's
    return StartingWeights(state, url, digest)


def apply_starting_weights(
    model: nn.Module, start: StartingWeights, *, freeze: bool
) -> StartReport:
    """Load every tensor of ``start`` whose name and shape fit ``model``; the others
    start fresh. Refuses weights that fit nothing (another architecture)."""
    target = model.state_dict()
    fits = {k: v for k, v in start.state.items() if k in target and target[k].shape == v.shape}
    if not fits:
        theirs = ", ".join(list(start.state)[:4])
        ours = ", ".join(list(target)[:4])
        raise TrainingError(
            f"none of the {len(start.state)} tensors of {start.origin} fit this model (they "
            f"are named {theirs}, ...; the model's are {ours}, ...): is model.arch the "
            "architecture they were trained as?"
        )
    model.load_state_dict(fits, strict=False)
    fresh = sorted(k for k in target if k not in fits and not k.endswith("num_batches_tracked"))
    frozen = freeze_backbone(model) if freeze else 0
    return StartReport(start.origin, start.sha256, len(fits), fresh, frozen)


def freeze_backbone(model: nn.Module) -> int:
    """Stop gradients everywhere but the last linear layer (the head); returns how many
    parameter tensors were frozen."""
    last = head_of(model)
    if last is None:
        raise TrainingError("train.freeze: backbone needs a model whose last layer is linear")
    head = {id(p) for p in last.parameters()}
    frozen = 0
    for parameter in model.parameters():
        if id(parameter) not in head:
            parameter.requires_grad_(False)
            frozen += 1
    return frozen
