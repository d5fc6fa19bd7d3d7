"""What the worker processes of one ``dnnops serve --workers N`` share: a folder.

Each worker holds its own models, batchers and log writers, and shares with its siblings
only what must be one per server:

- **a leader**: the worker holding ``leader.lock`` (an ``flock``, released by the kernel
  when its holder dies, so a sibling takes over at its next try) alone makes rollout
  decisions and runs monitoring, so a step is judged, an alert raised and a retraining
  started once, not once per worker;
- **a command log** (``commands.jsonl``): an admin change made through one worker (load a
  version, make it live) is appended as one line, and every sibling replays the lines it
  has not seen at its next controller tick. Lines are short and written with
  ``O_APPEND``, so concurrent appends never interleave. A worker started later (one
  restarted after a crash) replays them all, so it serves what its siblings serve;
- **Prometheus files** (``metrics/``): ``prometheus_client``'s multiprocess mode, so
  ``/metrics`` answered by any worker counts every worker's requests.

Rollouts need nothing more: they live in the metadata store, which every worker's
controller reads each tick.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

GROUP_ENV = "DNNOPS_SERVE_GROUP"
"""Set by the supervisor for its workers: the group folder."""
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class WorkerGroup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.commands = folder / "commands.jsonl"
        self._leader_fd: int | None = None
        self._offset = 0
        self._me = os.urandom(6).hex()  # names this worker's lines in the command log
        self.unreplayed: list[dict[str, Any]] = []
        """Sibling commands read from the command log and not applied here yet."""

    @classmethod
    def from_env(cls) -> WorkerGroup | None:
        folder = os.environ.get(GROUP_ENV)
        return cls(Path(folder)) if folder else None

    @staticmethod
    def create(folder: Path) -> WorkerGroup:
        """The supervisor's side: an empty group folder with its metrics directory."""
        (folder / "metrics").mkdir(parents=True, exist_ok=True)
        (folder / "commands.jsonl").touch()
        return WorkerGroup(folder)

    @property
    def metrics_dir(self) -> Path:
        return self.folder / "metrics"

    def leads(self) -> bool:
        """True in exactly one live worker: the one holding the leader lock."""
        if self._leader_fd is not None:
            return True
        fd = os.open(self.folder / "leader.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._leader_fd = fd
        return True

    def publish(self, command: dict[str, Any]) -> None:
        line = orjson.dumps({**command, "origin": self._me}) + b"\n"
        fd = os.open(self.commands, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def new_commands(self) -> list[dict[str, Any]]:
        """Commands appended by siblings since the last call, oldest first; a line still
        being written (no newline yet) waits for the next call."""
        with open(self.commands, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        commands = [orjson.loads(line) for line in complete.splitlines() if line]
        return [c for c in commands if c.get("origin") != self._me]
