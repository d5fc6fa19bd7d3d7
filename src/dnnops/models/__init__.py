"""Model architectures: built-in mlp, cnn and transformer, and user modules."""

from dnnops.models.build import ModelSpec, build_model

__all__ = ["ModelSpec", "build_model"]
