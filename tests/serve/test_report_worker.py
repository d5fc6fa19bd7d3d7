"""The report child runs on glibc's malloc (``PYTHONMALLOC=malloc``), so a finished report's
memory goes back to the OS (benchmarks/monitor/report_memory.py measures why), and it
does so again after it was killed and started afresh; the server's own environment is
left as it was."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from dnnops.home import resolve_home
from dnnops.serve.report_worker import ReportWorker


def probe(_job: object) -> tuple[int, str | None, bool]:
    """In the child: its pid, its PYTHONMALLOC, and whether pymalloc's arenas exist."""
    with tempfile.TemporaryFile("w+") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        pymalloc = "arenas allocated" in capture.read()
    return os.getpid(), os.environ.get("PYTHONMALLOC"), pymalloc


async def _probe_twice_across_a_kill(worker: ReportWorker) -> list[tuple[int, str | None, bool]]:
    first = await worker._run(probe, None)
    os.kill(first[0], signal.SIGKILL)  # out of memory, say
    with pytest.raises(BrokenProcessPool):
        await worker._run(probe, None)
    second = await worker._run(probe, None)
    return [first, second]


def test_the_child_allocates_with_malloc_before_and_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONMALLOC", "pymalloc")  # the server's own choice, kept
    worker = ReportWorker(resolve_home(tmp_path / "home"))
    try:
        first, second = asyncio.run(_probe_twice_across_a_kill(worker))
    finally:
        worker.close()
    assert first[0] != second[0], "a fresh child after the kill"
    assert [first[1:], second[1:]] == [("malloc", False)] * 2
    assert os.environ["PYTHONMALLOC"] == "pymalloc"
    assert probe(None)[2], "the server itself still runs on pymalloc"
