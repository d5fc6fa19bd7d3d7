"""One writer thread per log with group commit and rotation by size and age.

Callers hand in encoded records and get a future; a completed future means the bytes
were handed to the operating system: a process killed with SIGKILL afterwards loses
nothing (only a machine crash can, unless ``fsync`` is on).

Two ways in, one file: ``append`` queues for the writer thread (any thread may call it),
and ``append_async`` (the server's hot path) commits on the event loop itself: every
record appended during one loop iteration goes out in a single ``write`` at the end of
it. Writing to the page cache takes microseconds, while a hand-off to a thread and back
costs a GIL switch each way, which under load added tens of milliseconds of latency.
With ``fsync`` on, the event-loop path hands the batch to the thread instead.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnnops.encryption import process_sealer
from dnnops.files import PRIVATE_FILE, private_folder
from dnnops.predlog.frames import encode_frame

Done = Callable[[BaseException | None], None]
_STOP = object()


@dataclass(frozen=True)
class RotationPolicy:
    max_bytes: int = 64 * 1024 * 1024
    max_age_s: float = 3600.0


def segment_name(prefix: str, started: float, sequence: int, *, writer: str) -> str:
    """``PREFIX-<UTC start>-<sequence>-<writer>.log``: sorts by time, and two processes
    writing the same log (a server and ``dnnops feedback``) never share a file."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    return f"{prefix}-{stamp}-{sequence:06d}-{writer}.log"


def segment_started(path: Path) -> float:
    """When a segment was opened, from its name; its modification time when the name does
    not say (a file someone put there)."""
    try:
        stamp = path.stem.split("-")[1]
        return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S"))
    except (IndexError, ValueError):
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return 0.0


class SegmentWriter:
    def __init__(
        self,
        folder: Path,
        prefix: str,
        rotation: RotationPolicy | None = None,
        *,
        fsync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.prefix = prefix
        self.rotation = rotation or RotationPolicy()
        self.fsync = fsync
        self.clock = clock
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._size = 0
        self._opened_at = 0.0
        self._sequence = 0
        self.error: BaseException | None = None
        self._writer = os.urandom(3).hex()
        self._pending: list[tuple[Sequence[bytes], asyncio.Future[None]]] = []
        self._lock = threading.Lock()  # the loop and the thread may both write
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sealer = process_sealer()  # DNNOPS_ENCRYPTION_KEY_FILE: each record sealed

    def _framed(self, payloads: Iterable[bytes]) -> bytes:
        sealer = self._sealer
        if sealer is None:
            return b"".join(encode_frame(p) for p in payloads)
        return b"".join(encode_frame(sealer.seal(p), sealed=True) for p in payloads)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SegmentWriter:
        private_folder(self.folder)
        existing = sorted(self.folder.glob(f"{self.prefix}-*.log"))
        self._sequence = int(existing[-1].stem.split("-")[2]) + 1 if existing else 0
        self._thread = threading.Thread(target=self._run, name=f"log-{self.prefix}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop the thread and close the segment."""
        if self._thread is None:
            return
        if self._pending:
            self._commit_pending()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    # -- appending -------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes], done: Done | None = None) -> None:
        self._queue.put((payloads, done))

    def append_async(self, payloads: Sequence[bytes]) -> asyncio.Future[None]:
        """A future on the running loop, done when the records reached the OS."""
        loop = self._loop
        if loop is None or loop.is_closed():  # asking asyncio each time costs a getpid()
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self.fsync:

            def done(error: BaseException | None) -> None:
                loop.call_soon_threadsafe(_settle, future, error)

            self.append(payloads, done)
            return future
        if not self._pending:
            loop.call_soon(self._commit_pending)
        self._pending.append((payloads, future))
        return future

    def _commit_pending(self) -> None:
        """Group commit on the loop: one write for everything appended this iteration."""
        pending, self._pending = self._pending, []
        error = self._write(self._framed(p for payloads, _ in pending for p in payloads))
        for _, future in pending:
            _settle(future, error)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything appended so far is written."""
        written = threading.Event()
        self.append([], lambda error: written.set())
        written.wait(timeout)

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            entries = [item for item in batch if item is not _STOP]
            data = self._framed(p for item in entries for p in item[0])  # type: ignore[index]
            error = self._write(data)
            for item in entries:
                callback = item[1]  # type: ignore[index]
                if callback is not None:
                    callback(error)
        with self._lock:
            self._close_segment()

    def _write(self, data: bytes) -> BaseException | None:
        if not data:
            return None
        with self._lock:
            return self._write_locked(data)

    def _write_locked(self, data: bytes) -> BaseException | None:
        """Write all of ``data`` or none of it: after a failed write (a full disk) the
        segment is cut back to where it was, so no torn or unacknowledged frame stays."""
        try:
            self._rotate_if_due(len(data))
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)
            self._size += len(data)
            self.error = None
            return None
        except OSError as exc:
            self.error = exc
            self._cut_back()
            return exc

    def _cut_back(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # else a reader skips the torn tail by its CRC
            os.ftruncate(self._fd, self._size)

    def _rotate_if_due(self, incoming: int) -> None:
        now = self.clock()
        too_big = self._size + incoming > self.rotation.max_bytes and self._size > 0
        too_old = now - self._opened_at >= self.rotation.max_age_s
        if self._fd is not None and not (too_big or too_old):
            return
        self._close_segment()
        path = self.folder / segment_name(self.prefix, now, self._sequence, writer=self._writer)
        self._sequence += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        self._size, self._opened_at = 0, now

    def _close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
