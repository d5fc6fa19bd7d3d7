"""What the server's monitoring loop needs of the server it runs in (``serve/control.py``
implements it), so the loop is tested without starting a server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from dnnops.config import LogsConfig, MonitorConfig, RetrainConfig, SloConfig
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.registry.loader import LoadedVersion
from dnnops.registry.versions import ModelRegistry


class MonitoredServer(Protocol):
    @property
    def registry(self) -> ModelRegistry: ...

    @property
    def logs_dir(self) -> Path: ...

    @property
    def monitor(self) -> MonitorConfig: ...

    @property
    def slo(self) -> SloConfig: ...

    @property
    def retrain(self) -> RetrainConfig: ...

    @property
    def logs(self) -> LogsConfig: ...

    @property
    def project_file(self) -> Path | None:
        """The dnnops.yaml the server runs with (background retraining runs it)."""
        ...

    def leads(self) -> bool: ...

    def served_endpoints(self) -> set[str]:
        """The endpoints this server answers: it alerts on those only (a home's log may
        hold other servers' endpoints too)."""
        ...

    def loaded_versions(self) -> Mapping[tuple[str, str], LoadedVersion]:
        """Versions in memory, so a report does not re-read and re-verify them."""
        ...

    def report_digests(self) -> DigestStore: ...

    async def monitoring_report(self) -> Report:
        """The report over ``monitor.window``, built where it cannot stall the event loop."""
        ...

    def rollout_candidates(self) -> set[tuple[str, str]]:
        """(model, version) of every candidate of a rollout in progress."""
        ...

    def observe_report(self, report: Report) -> None:
        """Publish a report's numbers on ``/metrics``."""
        ...

    def purge_shared_log(self, cutoff: float) -> int:
        """Apply ``logs.retention`` to the fleet's shared log store too (blocking); the
        segments removed, 0 outside a fleet."""
        ...
