"""Open the registry a command works with, from the resolved home and the environment:
the database's, or a server's when ``DNNOPS_SERVER_URL`` is set."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dnnops.errors import UsageError
from dnnops.home import Home
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.remote import API_KEY_ENV, RegistryServer, RemoteRegistry, RemoteRuns
from dnnops.registry.runs import Runs, RunStore
from dnnops.registry.versions import ModelRegistry, Registry


def signing_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """``DNNOPS_SIGNING_KEY``: when set, manifests are signed and loads check the signature."""
    value = (os.environ if environ is None else environ).get("DNNOPS_SIGNING_KEY")
    return value.encode() if value else None


def open_registry(home: Home) -> Registry:
    """The server's registry when ``DNNOPS_SERVER_URL`` is set, else the database's."""
    if home.server_url:
        return RemoteRegistry(_server(home.server_url), signing_key())
    return open_database_registry(home)


def open_runs(home: Home) -> Runs:
    if home.server_url:
        return RemoteRuns(_server(home.server_url))
    return RunStore(open_engine(home.db_url))


def open_database_registry(home: Home) -> ModelRegistry:
    """The database's registry, whatever ``DNNOPS_SERVER_URL`` says: for the server
    itself, and for what only the database holds (retirement, garbage collection)."""
    return ModelRegistry(open_engine(home.db_url), open_store(home.artifacts_url), signing_key())


def database_registry(home: Home, command: str) -> ModelRegistry:
    """The database's registry for ``command``, which needs more than the registry routes
    serve (see ``database_url``)."""
    database_url(home, command)
    return open_database_registry(home)


def database_url(home: Home, command: str) -> str:
    """The metadata database's URL for ``command``, which reads more than the registry
    routes serve: refused with ``DNNOPS_SERVER_URL`` set, rather than silently reading an
    empty local database beside the team's."""
    if home.server_url:
        raise UsageError(
            f"{command} reads the metadata database, which DNNOPS_SERVER_URL does not reach "
            f"(the server's /v1/registry routes cover models, versions, aliases, artifacts, "
            f"runs and the audit log); run it where DNNOPS_DB_URL reaches the database, with "
            f"DNNOPS_SERVER_URL unset"
        )
    return home.db_url


def _server(url: str) -> RegistryServer:
    return RegistryServer(url, os.environ.get(API_KEY_ENV) or None)
