"""The server's monitoring loop, driven through its port with a fake server (no process):
it alerts on the endpoints it serves only, applies the log's retention, and records its
background retrainings (a failed one raises the retraining alert, a good one resolves it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dnnops.config import LogsConfig, MonitorConfig, RetrainConfig, SloConfig
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.judgements.alerts import Alert
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.loop import MonitorLoop
from dnnops.monitor.report import digest_store
from dnnops.monitor.retrain_runs import RetrainRun
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.predlog.records import PredictionRecord
from dnnops.registry.alerts import AlertStore
from dnnops.registry.db import open_engine
from dnnops.registry.loader import LoadedVersion
from dnnops.registry.open import open_registry
from dnnops.registry.versions import ModelRegistry
from dnnops.serve.report_worker import ReportWorker

SLO = SloConfig.model_validate(
    {"objectives": [{"name": "ok", "kind": "success_rate", "target": 0.999}]}
)


@dataclass
class FakeServer:
    registry: ModelRegistry
    logs_dir: Path
    served: set[str]
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    slo: SloConfig = SLO
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    project_file: Path | None = None
    reports: list[Report] = field(default_factory=list)
    worker: ReportWorker | None = None
    retrain_runs: list[RetrainRun] = field(default_factory=list)
    taking: set[tuple[str, str]] = field(default_factory=set)

    async def monitoring_report(self) -> Report:
        assert self.worker is not None
        return await self.worker.build(self.monitor.window, monitor=self.monitor, slo=self.slo)

    def leads(self) -> bool:
        return True

    def served_endpoints(self) -> set[str]:
        return self.served

    def loaded_versions(self) -> Mapping[tuple[str, str], LoadedVersion]:
        return {}

    def report_digests(self) -> DigestStore:
        return digest_store(self.logs_dir, self.slo)

    def rollout_candidates(self) -> set[tuple[str, str]]:
        return set()

    def versions_taking_traffic(self) -> set[tuple[str, str]]:
        return self.taking

    def observe_report(self, report: Report) -> None:
        self.reports.append(report)

    def observe_monitor_tick(self, seconds: float, failed: bool) -> None:
        return None

    def purge_shared_log(self, cutoff: float) -> int:
        return 0

    def retrain_finished(self, run: RetrainRun) -> None:
        self.retrain_runs.append(run)

    def alert_delivered(self, outcome: str) -> None:
        return None


def _failing_traffic(logs_dir: Path) -> None:
    now = time.time()
    records = [
        PredictionRecord(ts=now - 30 - i, status=500, endpoint=name, model=name, version="1")
        for name in ("mine", "theirs")
        for i in range(200)
    ]
    logger = PredictionLogger(logs_dir).start()
    logger.predictions.append([r.encode() for r in records])
    logger.close()


def test_a_server_alerts_on_the_endpoints_it_serves_only(tmp_path: Path) -> None:
    home = resolve_home(tmp_path / "home")
    _failing_traffic(home.logs_dir)
    alerts = AlertStore(open_engine(home.db_url))
    worker = ReportWorker(home)  # the report is built in a child process, as the server's
    server = FakeServer(open_registry(home), home.logs_dir, served={"mine"}, worker=worker)
    asyncio.run(MonitorLoop(server, alerts).tick())
    raised = {a.model for a in alerts.list(status="firing")}
    assert raised == {"mine"}, "the other server's endpoint in the same home is not ours"
    assert {v.slis.endpoint for v in server.reports[0].versions} == {"mine"}
    server.served = {"mine", "theirs"}
    asyncio.run(MonitorLoop(server, alerts).tick())
    worker.close()
    assert {a.model for a in alerts.list(status="firing")} == {"mine", "theirs"}


def _tick_until_retrained(loop: MonitorLoop, server: FakeServer, runs: int) -> None:
    deadline = time.monotonic() + 120
    while len(server.retrain_runs) < runs:
        assert time.monotonic() < deadline, "the background retraining never ended"
        asyncio.run(loop.tick())
        time.sleep(0.5)


def test_a_failed_background_retraining_is_recorded_alerted_and_resolved(
    tmp_path: Path,
) -> None:
    home = resolve_home(tmp_path / "home")
    project = tmp_path / "dnnops.yaml"
    good = f"name: churn\ndata: {{source: {tmp_path}/churn.csv, target: left}}\n"
    project.write_text(good + "model: {arch: no_such_arch}\n")
    alerts = AlertStore(open_engine(home.db_url))
    worker = ReportWorker(home)
    retrain = RetrainConfig(background=True, check_every=0.0)
    server = FakeServer(
        open_registry(home), home.logs_dir, {"churn"}, retrain=retrain, project_file=project,
        worker=worker,
    )  # fmt: skip
    loop = MonitorLoop(server, alerts)
    try:
        _tick_until_retrained(loop, server, runs=1)  # the project file is wrong
        [failed] = server.retrain_runs
        assert failed.outcome == "failed" and failed.exit_code != 0 and failed.duration_s > 0
        assert "no_such_arch" in Path(failed.log).read_text()  # its stderr, kept beside
        assert "no_such_arch" in failed.summary
        [alert] = alerts.list(status="firing")
        assert alert.kind == "retraining" and alert.severity == "ticket"
        assert alert.details["log"] == failed.log
        assert alert.details["runbook_url"].endswith("retraining.md")
        project.write_text(good)
        _tick_until_retrained(loop, server, runs=2)  # no champion, no trigger: a good run
        assert server.retrain_runs[1].outcome == "not_retrained"
        assert alerts.list(status="firing") == []  # resolved by the run that did not fail
    finally:
        if loop.retraining is not None:  # the next check already started: let it end
            loop.retraining.process.wait(timeout=120)
        worker.close()


def test_a_rollback_page_clears_once_its_candidate_takes_no_traffic(tmp_path: Path) -> None:
    home = resolve_home(tmp_path / "home")
    alerts = AlertStore(open_engine(home.db_url))
    page = Alert("churn@4/rollout/7", "churn", "page", "rollout", "churn@4 rolled back", {})
    assert alerts.event(page)
    worker = ReportWorker(home)
    server = FakeServer(open_registry(home), home.logs_dir, {"churn"}, worker=worker)
    loop = MonitorLoop(server, alerts)
    try:
        server.taking = {("churn", "3"), ("churn", "4")}  # the canary still answers some
        asyncio.run(loop.tick())
        assert [a.key for a in alerts.list(status="firing")] == ["churn@4/rollout/7"]
        server.taking = {("churn", "3")}  # traffic is back on the stable version alone
        asyncio.run(loop.tick())
    finally:
        worker.close()
    assert alerts.list(status="firing") == []
    [cleared] = alerts.list(status="resolved")
    assert cleared.key == "churn@4/rollout/7" and cleared.kind == "rollout"
