"""The installed dnnops's version, read from its package metadata: ``pyproject.toml`` is
the one place it is written (it was also a constant in ``dnnops/__init__.py``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dnnops")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"
