"""Model architectures: built-in mlp, cnn and transformer, and user modules.

``ModelSpec`` and ``build_model`` load on first use: the server imports this package for
``outputs`` alone and serves ONNX graphs without torch (1.8 s of every start here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dnnops.models.build import ModelSpec, build_model

__all__ = ["ModelSpec", "build_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dnnops.models import build

        return getattr(build, name)
    raise AttributeError(f"module 'dnnops.models' has no attribute {name!r}")
