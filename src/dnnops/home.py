"""Where dnnops keeps its state: the home folder, the metadata database, artifacts and logs.

Resolved when a command runs (never at import time) from ``--home``, then the
environment (``DNNOPS_HOME``, ``DNNOPS_DB_URL``, ``DNNOPS_ARTIFACTS_URL``,
``DNNOPS_LOGS_URL``), then the default ``.dnnops/`` in the current directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dnnops.errors import UsageError


@dataclass(frozen=True)
class Home:
    root: Path
    db_url: str
    artifacts_url: str
    logs_url: str

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def logs_dir(self) -> Path:
        """The prediction and feedback logs' folder (local; object storage is not yet)."""
        url = self.logs_url
        if "://" in url and not url.startswith("file://"):
            raise UsageError(f"DNNOPS_LOGS_URL must be a local folder for now, got {url!r}")
        return Path(url.removeprefix("file://"))


def resolve_home(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """Build the ``Home`` for this invocation; ``environ`` is injectable for tests."""
    env = os.environ if environ is None else environ
    root = (home or Path(env.get("DNNOPS_HOME") or ".dnnops")).expanduser().absolute()
    return Home(
        root=root,
        db_url=env.get("DNNOPS_DB_URL") or f"sqlite:///{root / 'dnnops.db'}",
        artifacts_url=env.get("DNNOPS_ARTIFACTS_URL") or str(root / "artifacts"),
        logs_url=env.get("DNNOPS_LOGS_URL") or str(root / "logs"),
    )
