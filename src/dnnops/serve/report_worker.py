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
import contextlib
import ctypes
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from dnnops.config import ExplainConfig, MonitorConfig, SloConfig
from dnnops.home import Home
from dnnops.monitor.explanations import SampleCounts
from dnnops.monitor.judgements.report_types import Report

if TYPE_CHECKING:  # the child imports these when it first needs them
    from dnnops.dashboard.document import DashboardDocument
    from dnnops.monitor.explanations import ExplanationSampler, VersionExplainers
    from dnnops.monitor.segments.digest_store import DigestStore
    from dnnops.registry.loader import LoadedVersion
    from dnnops.registry.versions import ModelRegistry

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class ReportJob:
    """Everything a report needs, small and picklable."""

    home: Home
    window_s: float
    monitor: MonitorConfig
    slo: SloConfig


@dataclass(frozen=True)
class ExplainJob:
    """Preprocessed rows of one version to explain (``:explain``)."""

    home: Home
    model: str
    version: str
    x: np.ndarray


@dataclass(frozen=True)
class SampleJob:
    """One pass of the background explanation sampler."""

    home: Home
    config: ExplainConfig
    since: float
    """The server's start: predictions logged since are sampled."""


@dataclass(frozen=True)
class DashboardJob:
    """Everything the dashboard's data of one endpoint needs."""

    report: ReportJob
    endpoint: str
    live: dict[str, Any]
    """The server's view of the endpoint (weights, rollout)."""


class ReportWorker:
    """One child process (``spawn``: never a fork of a threaded server), started on the
    first report and started again if it dies."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._pool: ProcessPoolExecutor | None = None

    async def build(self, window_s: float, *, monitor: MonitorConfig, slo: SloConfig) -> Report:
        """The report over ``window_s``, as ``dnnops monitor report`` (and ``/v1/monitor``)."""
        job = ReportJob(self.home, window_s, monitor, slo)
        return await self._run(build_in_child, job)

    async def dashboard(
        self,
        endpoint: str,
        window_s: float,
        *,
        live: dict[str, Any],
        monitor: MonitorConfig,
        slo: SloConfig,
    ) -> DashboardDocument:
        """What the dashboard shows for ``endpoint`` over ``window_s``."""
        job = DashboardJob(ReportJob(self.home, window_s, monitor, slo), endpoint, live)
        return await self._run(dashboard_in_child, job)

    async def explain(self, model: str, version: str, x: np.ndarray) -> dict[str, Any]:
        """``monitor.explanations.explain_rows`` in the child: torch and the gradients
        stay out of the serving process."""
        return await self._run(explain_in_child, ExplainJob(self.home, model, version, x))

    async def load_explainer(self, model: str, version: str) -> None:
        """Start the child and load the version's explainer in it, so that the time an
        explanation is allowed (``monitor.explain.timeout``) is spent explaining: a cold
        child imports torch and the model, seconds on a busy machine."""
        empty = np.empty((0, 0), dtype=np.float32)
        await self._run(load_explainer_in_child, ExplainJob(self.home, model, version, empty))

    async def sample(self, config: ExplainConfig, *, since: float) -> SampleCounts:
        """Explain the sampled predictions logged since the last pass (the first pass:
        since ``since``)."""
        job = SampleJob(self.home, config, since)
        return await self._run(sample_in_child, job)

    async def _run(self, function: Callable[[J], R], job: J) -> R:
        """``function(job)`` in the child: each job type and what it answers are typed
        end to end (``ReportJob`` -> ``Report``, ``SampleJob`` -> ``SampleCounts``...)."""
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            with environment(CHILD_ENVIRONMENT):  # the first job starts the child
                running = loop.run_in_executor(self._pool, function, job)
        else:
            running = loop.run_in_executor(self._pool, function, job)
        try:
            return await running
        except BrokenProcessPool:
            self._pool = None  # killed (out of memory?): a fresh child next time
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


CHILD_ENVIRONMENT = {"PYTHONMALLOC": "malloc"}
"""The child's Python allocates with glibc's malloc, not pymalloc. A report decodes
hundreds of thousands of records into small objects and frees them; pymalloc returns a
1 MiB arena to the OS only when every object in it is gone, and the few objects a report
keeps (the digests of the segments still being written, the caches) land amid the garbage
and pin a few more arenas each time. Measured with ``benchmarks/monitor/report_memory.py``
(a report every 15 s while 4,000 records/s are logged, 15 minutes): under pymalloc the
child grew 4.1 MB a minute after the window filled, its arenas 91 -> 125 MiB with the
objects in them flat at 48 MB; under glibc's malloc, whose free pages ``malloc_trim``
hands back, 0.33 MB a minute, for reports ~20% slower (2.4 s against 2.0 s)."""


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block (a child started in it inherits them),
    then the environment as it was."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class ChildState:
    """What the child keeps between jobs: its registry, the versions it loaded, one digest
    store per SLO, its explainers and the background sampler."""

    registry: ModelRegistry | None = None
    loaded: dict[tuple[str, str], LoadedVersion | None] = field(default_factory=dict)
    stores: dict[str, DigestStore] = field(default_factory=dict)
    explainers: VersionExplainers | None = None
    sampler: ExplanationSampler | None = None


_CHILD = ChildState()


def releasing_memory(work: Callable[[J], R]) -> Callable[[J], R]:
    """``work``, then the heap it freed handed back to the OS (``give_back_memory``)."""

    @functools.wraps(work)
    def run(job: J) -> R:
        try:
            return work(job)
        finally:
            give_back_memory()

    return run


@releasing_memory
def build_in_child(job: ReportJob) -> Report:
    from dnnops.monitor.report import build_report

    return build_report(
        _registry(job),
        job.home.logs_dir,
        job.window_s,
        monitor=job.monitor,
        slo=job.slo,
        store=_store(job),
        remember=_CHILD.loaded,  # what it loads stays for the next report
    )


@releasing_memory
def dashboard_in_child(job: DashboardJob) -> DashboardDocument:
    from dnnops.dashboard.data import dashboard_data

    report = job.report
    return dashboard_data(
        _registry(report),
        report.home.logs_dir,
        job.endpoint,
        window_s=report.window_s,
        monitor=report.monitor,
        slo=report.slo,
        loaded={k: v for k, v in _CHILD.loaded.items() if v is not None},
        live=job.live,
        store=_store(report),
    )


def give_back_memory() -> None:
    """Hand the heap a finished report freed back to the OS. glibc keeps freed memory for
    reuse, so without this the child's resident size is the largest report it ever built,
    not what it holds; with the child's Python on malloc (``CHILD_ENVIRONMENT``) this
    covers its objects too. A few milliseconds; nothing on other C libraries."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


def explain_in_child(job: ExplainJob) -> dict[str, Any]:
    from dnnops.monitor.explanations import explain_rows

    return explain_rows(_explainers(job), job.model, job.version, x=job.x)


def load_explainer_in_child(job: ExplainJob) -> None:
    _explainers(job).explainer(job.model, job.version)


def _explainers(job: ExplainJob | SampleJob) -> VersionExplainers:
    """The child's explainers, shared by ``:explain`` and the sampler. One torch thread:
    explanations are small batches, and idle OpenMP threads spin on a core after each."""
    from dnnops.monitor.explanations import VersionExplainers

    if _CHILD.explainers is None:
        import torch

        torch.set_num_threads(1)
        _CHILD.explainers = VersionExplainers(_registry(job))
    return _CHILD.explainers


def sample_in_child(job: SampleJob) -> SampleCounts:
    from dnnops.monitor.explanations import ExplanationSampler

    sampler = _CHILD.sampler
    if sampler is None:
        sampler = _CHILD.sampler = ExplanationSampler(
            job.home.logs_dir, _registry(job), job.config, since=job.since
        )
        sampler.explainers = _explainers(job)
    sampler.config = job.config
    return sampler.run_once()


def _registry(job: ReportJob | ExplainJob | SampleJob) -> ModelRegistry:
    from dnnops.registry.open import open_database_registry

    if _CHILD.registry is None:
        _CHILD.registry = open_database_registry(job.home)
    return _CHILD.registry


def _store(job: ReportJob) -> DigestStore:
    """One digest store per SLO (its latency thresholds name the digests)."""
    from dnnops.monitor.report import digest_store

    stores = _CHILD.stores
    key = job.slo.model_dump_json()
    if key not in stores:
        stores[key] = digest_store(job.home.logs_dir, job.slo)
    return stores[key]
