"""dnnops: take a deep neural network from data to production and keep it healthy there.

The Python API (``dnnops.load``, ``dnnops.log_model``, ``dnnops.Project``,
``dnnops.Client``) and the project file's loader are imported on first use (PEP 562), so
``import dnnops`` and every CLI command that needs neither stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "__version__": "dnnops.version",
    "DnnopsError": "dnnops.errors",
    "ProjectConfig": "dnnops.config",
    "load_config": "dnnops.config",
    "parse_config": "dnnops.config",
    "load": "dnnops.api",
    "log_model": "dnnops.api",
    "Model": "dnnops.api",
    "Project": "dnnops.api",
    "Client": "dnnops.api",
}
__all__ = [
    "Client",
    "DnnopsError",
    "Model",
    "Project",
    "ProjectConfig",
    "__version__",
    "load",
    "load_config",
    "log_model",
    "parse_config",
]

if TYPE_CHECKING:
    from dnnops.api import Client, Model, Project, load, log_model
    from dnnops.config import ProjectConfig, load_config, parse_config
    from dnnops.errors import DnnopsError
    from dnnops.version import __version__


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dnnops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
