"""``dnnops serve --workers N``: one listening socket, N worker processes accepting on it.

One Python process answers HTTP on one core (measured: its event loop saturates while the
other cores idle), so more throughput needs more processes, as with gunicorn or uvicorn's
``--workers``. The supervisor binds the port itself, so every worker accepts from the
same queue and a port of 0 means one port for all; it starts each worker as a fresh
interpreter (``python -m dnnops.serve.worker``: no fork of a process holding threads),
waits until every one has loaded and warmed up its models, then says where it listens.
A worker that dies is started again; SIGTERM or SIGINT is passed to every worker, each
drains its queue and flushes its logs, and the supervisor exits once they have.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from dnnops.serve.group import GROUP_ENV, METRICS_ENV, WorkerGroup

log = logging.getLogger("dnnops.serve")
WORKER_ENV = "DNNOPS_WORKER"
RESTARTS_PER_MINUTE = 5
"""More crashes than this in a minute is a broken deployment, not bad luck: stop."""


@dataclass
class WorkerSpec:
    """What every worker needs to build the same server as ``dnnops serve`` would."""

    config: str | None
    home: str | None
    models: list[str]
    workers: int
    listen_fd: int = -1
    ready_fd: int = -1
    index: int = 0
    drain_timeout: float = 10.0
    host: str = "127.0.0.1"
    """The address served: gRPC binds it too (HTTP's socket is handed over)."""
    grpc_port: int | None = None


class WorkerFailed(RuntimeError):
    """A worker exited before it was ready, or kept crashing."""


class Supervisor:
    def __init__(self, spec: WorkerSpec, host: str, port: int) -> None:
        self.spec = spec
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=2048)
        self.socket.set_inheritable(True)
        self.folder = Path(tempfile.mkdtemp(prefix="dnnops-serve-"))
        self.group = WorkerGroup.create(self.folder)
        self.ready_read, self.ready_write = os.pipe()
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self._crashes: list[float] = []

    @property
    def address(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker and wait until each says it is ready."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for index in range(self.spec.workers):
            self._spawn(index)
        ready: set[int] = set()
        pending = b""
        while len(ready) < self.spec.workers:
            if self.stopping:
                raise WorkerFailed("stopped while the workers were loading")
            for index, process in self.workers.items():
                if process.poll() is not None:
                    raise WorkerFailed(
                        f"worker {index} exited with status {process.returncode} while loading"
                    )
            readable, _, _ = select.select([self.ready_read], [], [], 0.2)
            if readable:
                pending += os.read(self.ready_read, 4096)
                *lines, pending = pending.split(b"\n")
                ready.update(int(line) for line in lines if line.strip())

    def wait(self) -> int:
        """Restart workers that die until a signal asks to stop; then drain them all."""
        while not self.stopping:
            time.sleep(0.2)
            for index, process in list(self.workers.items()):
                if process.poll() is None or self.stopping:
                    continue
                self._forget(process)
                log.error(
                    "worker %d (pid %d) exited with %s; starting it again",
                    index,
                    process.pid,
                    process.returncode,
                )
                now = time.monotonic()
                self._crashes = [t for t in self._crashes if now - t < 60] + [now]
                if len(self._crashes) > RESTARTS_PER_MINUTE:
                    log.error("workers crashed %d times in a minute; stopping", len(self._crashes))
                    self.stop()
                    return 1
                self._spawn(index)
        return self.stop()

    def stop(self) -> int:
        """SIGTERM every worker, wait for their drain (bounded), then clean up. The exit
        status is 0 when every worker drained and exited cleanly."""
        self.stopping = True
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.spec.drain_timeout + 15
        status = 0
        for process in self.workers.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not drain in time; killing it", process.pid)
                process.kill()
                process.wait()
            status = status or (process.returncode != 0)
        self.socket.close()
        os.close(self.ready_read)
        os.close(self.ready_write)
        shutil.rmtree(self.folder, ignore_errors=True)
        return int(status)

    # -- workers -------------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        spec = {
            **asdict(self.spec),
            "listen_fd": self.socket.fileno(),
            "ready_fd": self.ready_write,
            "index": index,
        }
        env = {
            **os.environ,
            WORKER_ENV: json.dumps(spec),
            GROUP_ENV: str(self.folder),
            METRICS_ENV: str(self.group.metrics_dir),
        }
        self.workers[index] = subprocess.Popen(
            [sys.executable, "-m", "dnnops.serve.worker"],
            env=env,
            pass_fds=(self.socket.fileno(), self.ready_write),
        )

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        """Drop a dead worker's live gauges (queue depth) from the shared metrics."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid, str(self.group.metrics_dir))  # type: ignore[no-untyped-call]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
