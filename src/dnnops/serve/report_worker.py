"""The monitoring loop's reports, built in a child process.

Building a report decodes log records and builds pandas frames: C calls that hold the GIL
for hundreds of milliseconds at a time. In a thread of the server they stalled its event
loop for 270-510 ms once a minute under load (the soak's P99 went from 15 ms to 200-280 ms
in every minute with a tick; py-spy: the GIL held by ``asyncio.to_thread``'s worker). A
child process has its own interpreter, so the loop never waits for it. The child lives as
long as the server and keeps its registry, its digest store (each report reads only the
frames logged since the last) and the versions it loaded, exactly as the thread did.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from dnnops.config import MonitorConfig, SloConfig
from dnnops.home import Home
from dnnops.monitor.report_types import Report


@dataclass(frozen=True)
class ReportJob:
    """Everything a report needs, small and picklable."""

    home: Home
    window_s: float
    monitor: MonitorConfig
    slo: SloConfig


class ReportWorker:
    """One child process (``spawn``: never a fork of a threaded server), started on the
    first report and started again if it dies."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._pool: ProcessPoolExecutor | None = None

    async def build(self, window_s: float, *, monitor: MonitorConfig, slo: SloConfig) -> Report:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        job = ReportJob(self.home, window_s, monitor, slo)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, build_in_child, job)
        except BrokenProcessPool:
            self._pool = None  # killed (out of memory?): a fresh child next time
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


_CHILD: dict[str, Any] = {}
"""The child's registry, digest stores and loaded versions, kept between reports."""


def build_in_child(job: ReportJob) -> Report:
    from dnnops.monitor.report import build_report, digest_store
    from dnnops.registry.open import open_registry

    if "registry" not in _CHILD:
        _CHILD["registry"] = open_registry(job.home)
        _CHILD["loaded"] = {}
        _CHILD["stores"] = {}
    stores = _CHILD["stores"]
    store = stores.get(job.slo.model_dump_json())
    if store is None:
        store = stores[job.slo.model_dump_json()] = digest_store(job.home.logs_dir, job.slo)
    return build_report(
        _CHILD["registry"],
        job.home.logs_dir,
        job.window_s,
        monitor=job.monitor,
        slo=job.slo,
        loaded=_CHILD["loaded"],
        store=store,
        remember=_CHILD["loaded"],
    )
