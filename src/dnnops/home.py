"""Where dnnops keeps its state: the home folder, the metadata database, artifacts and logs.

Resolved when a command runs (never at import time) from ``--home``, then the
environment (``DNNOPS_HOME``, ``DNNOPS_DB_URL``, ``DNNOPS_ARTIFACTS_URL``,
``DNNOPS_LOGS_URL``, ``DNNOPS_REPLICA``, ``DNNOPS_SERVER_URL``), then the default
``.dnnops/`` in the current directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path
    db_url: str
    artifacts_url: str
    logs_url: str
    replica: str = ""
    """This server's name in a fleet (``DNNOPS_REPLICA``, else the host name): its folder
    in the fleet's log store, and the ``replica`` of its records."""
    server_url: str | None = None
    """``DNNOPS_SERVER_URL``: the registry and runs are this server's (``/v1/registry``),
    reached with the key in ``DNNOPS_API_KEY``, instead of the database's."""

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def logs_dir(self) -> Path:
        """The prediction and feedback logs' local folder: ``DNNOPS_LOGS_URL`` when that
        is a folder, else ``<home>/logs`` (the replica's own segments, and its siblings'
        pulled from the fleet's store)."""
        if self.fleet_logs_url is not None:
            return self.root / "logs"
        return Path(self.logs_url.removeprefix("file://"))

    @property
    def fleet_logs_url(self) -> str | None:
        """Where a fleet's replicas ship their segments: ``DNNOPS_LOGS_URL`` when it names
        an object store (``s3://…``, any fsspec URL but a local folder)."""
        url = self.logs_url
        return url if "://" in url and not url.startswith("file://") else None


def resolve_home(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """Build the ``Home`` for this invocation; ``environ`` is injectable for tests."""
    env = os.environ if environ is None else environ
    root = (home or Path(env.get("DNNOPS_HOME") or ".dnnops")).expanduser().absolute()
    return Home(
        root=root,
        db_url=env.get("DNNOPS_DB_URL") or f"sqlite:///{root / 'dnnops.db'}",
        artifacts_url=env.get("DNNOPS_ARTIFACTS_URL") or str(root / "artifacts"),
        logs_url=env.get("DNNOPS_LOGS_URL") or str(root / "logs"),
        replica=env.get("DNNOPS_REPLICA") or socket.gethostname(),
        server_url=env.get("DNNOPS_SERVER_URL") or None,
    )
