"""What the rollout controller needs of the server it runs in, and nothing more.

The controller decides; the server routes. The server implements ``ServerPort``
(``serve/control.py``) and tests implement it with a fake, so the controller is driven
with a fake clock and fake traffic, no subprocess and no HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from dnnops.config import KpiConfig
from dnnops.monitor.judgements.alerts import WebhookUrl
from dnnops.registry.versions import ModelRegistry, VersionRecord
from dnnops.rollout.policy import RolloutState


class Traffic(Protocol):
    """One endpoint's routing, as the controller reads and changes it."""

    @property
    def name(self) -> str: ...

    @property
    def versions(self) -> Mapping[str, object]:
        """The versions loaded on the endpoint, by version number."""
        ...

    live: str | None
    rollout: RolloutState | None
    """The rollout shown for the endpoint."""

    def set_traffic(
        self, canary: str | None, weight: float = 0.0, shadow: str | None = None
    ) -> None: ...


class ServerPort(Protocol):
    """The server, as seen by its rollout controller."""

    @property
    def registry(self) -> ModelRegistry: ...

    @property
    def logs_dir(self) -> Path: ...

    @property
    def webhook_url(self) -> WebhookUrl: ...

    @property
    def runbooks(self) -> str:
        """``monitor.runbook_url``: where a rollback page points."""
        ...

    @property
    def kpis(self) -> Sequence[KpiConfig]:
        """``monitor.kpis``: the business outcomes ``rollout.kpi_gates`` judge."""
        ...

    def traffic(self, endpoint: str) -> Traffic | None: ...

    def all_traffic(self) -> list[Traffic]: ...

    def leads(self) -> bool:
        """Whether this process makes the decisions (one worker of a group does)."""
        ...

    async def follow_siblings(self) -> None:
        """Apply the loads sibling workers published."""
        ...

    async def load(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        """Load (verify, warm up) a version on ``endpoint`` in this process."""
        ...

    async def load_everywhere(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        """``load`` here and in every sibling worker."""
        ...

    def retire_later(self, endpoint: str, version: str) -> None:
        """Unload ``version`` once it takes no traffic (after a grace)."""
        ...

    def observe_weight(self, endpoint: str, weight: float) -> None:
        """The canary's share of traffic, for ``/metrics``."""
        ...
