"""Open the registry a command works with, from the resolved home and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dnnops.home import Home
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.runs import RunStore
from dnnops.registry.versions import ModelRegistry


def signing_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """``DNNOPS_SIGNING_KEY``: when set, manifests are signed and loads check the signature."""
    value = (os.environ if environ is None else environ).get("DNNOPS_SIGNING_KEY")
    return value.encode() if value else None


def open_registry(home: Home) -> ModelRegistry:
    return ModelRegistry(open_engine(home.db_url), open_store(home.artifacts_url), signing_key())


def open_runs(home: Home) -> RunStore:
    return RunStore(open_engine(home.db_url))
