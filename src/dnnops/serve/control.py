"""The server's side of its control loops' ports: ``ServerControl`` lets the rollout
controller (``rollout.ports.ServerPort``) and the monitoring loop
(``monitor.ports.MonitoredServer``) read and change this process's state without
importing the server, which keeps the packages acyclic and the loops testable alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dnnops.config import KpiConfig, LogsConfig, MonitorConfig, RetrainConfig, SloConfig
from dnnops.monitor.judgements.alerts import Outcome, WebhookUrl
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.retrain_runs import RETRAIN_RUN, RetrainRun
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.registry.loader import LoadedVersion
from dnnops.registry.versions import ModelRegistry, VersionRecord
from dnnops.rollout.ports import Traffic
from dnnops.serve.state import ServerState


class ServerControl:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    @property
    def registry(self) -> ModelRegistry:
        return self.state.registry

    @property
    def logs_dir(self) -> Path:
        return self.state.logger.logs_dir

    @property
    def webhook_url(self) -> WebhookUrl:
        return self.state.policies.monitor.webhook_url

    @property
    def runbooks(self) -> str:
        return self.state.policies.monitor.runbook_url

    @property
    def kpis(self) -> Sequence[KpiConfig]:
        return self.state.policies.monitor.kpis

    @property
    def monitor(self) -> MonitorConfig:
        return self.state.policies.monitor

    @property
    def slo(self) -> SloConfig:
        return self.state.policies.slo

    @property
    def retrain(self) -> RetrainConfig:
        return self.state.policies.retrain

    @property
    def logs(self) -> LogsConfig:
        return self.state.policies.logs

    @property
    def project_file(self) -> Path | None:
        return self.state.policies.project_file

    def alert_delivered(self, outcome: Outcome) -> None:
        self.state.metrics.alert_deliveries.labels(outcome).inc()

    def retrain_finished(self, run: RetrainRun) -> None:
        self.state.metrics.retrain_runs.labels(run.outcome).inc()
        self.state.registry.audit(RETRAIN_RUN, run.model, run.to_dict())

    def traffic(self, endpoint: str) -> Traffic | None:
        return self.state.endpoints.get(endpoint)

    def all_traffic(self) -> list[Traffic]:
        return list(self.state.endpoints.values())

    def leads(self) -> bool:
        return self.state.leads()

    async def follow_siblings(self) -> None:
        await self.state.follow_siblings()

    async def load(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        await self.state.load(endpoint, record, make_live)

    async def load_everywhere(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        await self.state.load_everywhere(endpoint, record, make_live)

    def retire_later(self, endpoint: str, version: str) -> None:
        self.state.retire_later(self.state.endpoints[endpoint], version)

    def observe_weight(self, endpoint: str, weight: float) -> None:
        self.state.metrics.canary_weight.labels(endpoint).set(weight)

    def loaded_versions(self) -> Mapping[tuple[str, str], LoadedVersion]:
        return self.state.loaded_versions()

    def report_digests(self) -> DigestStore:
        return self.state.report_digests()

    def rollout_candidates(self) -> set[tuple[str, str]]:
        return {
            (e.rollout.model, str(e.rollout.candidate))
            for e in self.state.endpoints.values()
            if e.rollout is not None and e.rollout.active
        }

    def versions_taking_traffic(self) -> set[tuple[str, str]]:
        taking = self.rollout_candidates()
        for endpoint in self.state.endpoints.values():
            for version in (endpoint.live, endpoint.canary if endpoint.canary_weight else None):
                runtime = endpoint.runtime(version) if version is not None else None
                if runtime is not None:
                    taking.add((runtime.model, runtime.version))
        return taking

    def served_endpoints(self) -> set[str]:
        return set(self.state.endpoints)

    def observe_report(self, report: Report) -> None:
        self.state.metrics.observe_report(report)

    async def monitoring_report(self) -> Report:
        return await self.state.report(self.state.policies.monitor.window)

    def purge_shared_log(self, cutoff: float) -> int:
        fleet_log = self.state.fleet_log
        return 0 if fleet_log is None else fleet_log.purge_before(cutoff)
