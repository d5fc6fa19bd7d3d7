"""Model weights on disk as safetensors: no pickle, and a digest of exactly what was saved."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from dnnops.errors import ModelError
from dnnops.files import atomic_write, sha256_file


def weights_bytes(model: nn.Module) -> bytes:
    """The safetensors encoding of ``model``'s state (contiguous CPU copies)."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    return bytes(save(tensors))


def save_weights(model: nn.Module, path: Path) -> str:
    """Write the weights atomically; return the file's SHA-256."""
    data = weights_bytes(model)
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def load_weights(model: nn.Module, path: Path, expected_sha256: str | None = None) -> None:
    """Load safetensors weights into ``model``, verifying the digest when one is given."""
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelError(
                f"weights file {path} has SHA-256 {actual}, expected {expected_sha256}"
            )
    state: dict[str, torch.Tensor] = load_file(str(path))
    model.load_state_dict(state)
