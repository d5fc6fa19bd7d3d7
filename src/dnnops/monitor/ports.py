"""What the server's monitoring loop needs of the server it runs in (``serve/control.py``
implements it), so the loop is tested without starting a server. Which alerts fire is
not asked of the server: ``judgements/alerts.evaluate_alerts`` decides it from the report
alone."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from dnnops.config import LogsConfig, MonitorConfig, RetrainConfig
from dnnops.monitor.judgements.alerts import Outcome
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.retrain_runs import RetrainRun


class MonitoredServer(Protocol):
    @property
    def logs_dir(self) -> Path: ...

    @property
    def monitor(self) -> MonitorConfig: ...

    @property
    def retrain(self) -> RetrainConfig: ...

    @property
    def logs(self) -> LogsConfig: ...

    @property
    def project_file(self) -> Path | None:
        """The dnnops.yaml the server runs with (background retraining runs it)."""
        ...

    def served_endpoints(self) -> set[str]:
        """The endpoints this server answers: it alerts on those only (a home's log may
        hold other servers' endpoints too)."""
        ...

    async def monitoring_report(self) -> Report:
        """The report over ``monitor.window``, built where it cannot stall the event loop."""
        ...

    def versions_taking_traffic(self) -> set[tuple[str, str]]:
        """(model, version) of every version answering requests: each endpoint's live one
        and a rollout's candidate (a rollback's page clears once its candidate is not)."""
        ...

    def rollout_candidates(self) -> set[tuple[str, str]]:
        """(model, version) of every candidate of a rollout in progress."""
        ...

    def observe_report(self, report: Report) -> None:
        """Publish a report's numbers on ``/metrics``."""
        ...

    def alert_delivered(self, outcome: Outcome) -> None:
        """Count one webhook delivery by outcome (``dnnops_alert_deliveries_total``)."""
        ...

    def retrain_finished(self, run: RetrainRun) -> None:
        """Record a finished background retraining (the audit log, ``/metrics``)."""
        ...

    def purge_shared_log(self, cutoff: float) -> int:
        """Apply ``logs.retention`` to the fleet's shared log store too (blocking); the
        segments removed, 0 outside a fleet."""
        ...
