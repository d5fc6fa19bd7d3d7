"""User architectures named ``python:package.module:ClassName`` in ``model.arch``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from dnnops.errors import ModelError


def build_user_model(
    arch: str, params: Mapping[str, Any], input_shape: Sequence[int], *, num_classes: int
) -> nn.Module:
    """Import the class and call it with ``params``, plus ``input_shape`` and
    ``num_classes`` when its constructor takes them."""
    module_name, _, class_name = arch.removeprefix("python:").partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"cannot import {module_name!r} for model.arch {arch!r}: {exc}. "
            "Install the package or add its folder to PYTHONPATH."
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"{module_name}.{class_name} is not a torch.nn.Module subclass")
    accepted = inspect.signature(cls).parameters
    kwargs = dict(params)
    for name, value in (("input_shape", list(input_shape)), ("num_classes", num_classes)):
        if name in accepted and name not in kwargs:
            kwargs[name] = value
    try:
        model: nn.Module = cls(**kwargs)
    except TypeError as exc:
        raise ModelError(f"model.params do not fit {class_name}: {exc}") from None
    return model
