"""Resumable artifact uploads: a client sends an artifact in chunks, each at the offset the
server holds; an interrupted upload resumes there, and the whole is stored only when it
hashes to the digest the client named.

The partial bytes wait in ``<home>/uploads/<sha256>.part``, locked while a chunk is
appended, so two workers (or two clients) never interleave their writes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dnnops.files import PRIVATE_FILE, private_folder
from dnnops.registry.artifacts import ArtifactStore


@dataclass(frozen=True)
class UploadState:
    sha256: str
    received: int
    stored: bool

    def to_dict(self) -> dict[str, object]:
        return {"sha256": self.sha256, "received": self.received, "stored": self.stored}


class OffsetMismatch(Exception):
    """The chunk starts elsewhere than the bytes received so far end."""

    def __init__(self, received: int) -> None:
        super().__init__(f"this upload has {received} bytes; send the chunk at that offset")
        self.received = received


class UploadRejected(Exception):
    """The chunk overruns the declared length, or the whole hashes to another digest."""


@dataclass(frozen=True)
class Uploads:
    folder: Path
    store: ArtifactStore

    def state(self, digest: str) -> UploadState:
        if self.store.exists(digest):
            return UploadState(digest, 0, True)
        part = self._part(digest)
        return UploadState(digest, part.stat().st_size if part.exists() else 0, False)

    def append(self, digest: str, chunk: bytes, *, offset: int, length: int) -> UploadState:
        """Add ``chunk`` at ``offset`` of an artifact of ``length`` bytes; store it when
        complete and its SHA-256 is ``digest`` (else drop the partial bytes)."""
        if self.store.exists(digest):
            return UploadState(digest, 0, True)
        if offset < 0 or length < 0 or offset + len(chunk) > length:
            raise UploadRejected(
                f"Upload-Offset {offset} plus {len(chunk)} bytes overruns Upload-Length {length}"
            )
        part = self._part(digest)
        descriptor = os.open(part, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        with os.fdopen(descriptor, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            received = handle.seek(0, os.SEEK_END)
            if received != offset:
                raise OffsetMismatch(received)
            handle.write(chunk)
            handle.flush()
            received += len(chunk)
            if received < length:
                return UploadState(digest, received, False)
            handle.seek(0)
            data = handle.read()
            actual = hashlib.sha256(data).hexdigest()
            if actual == digest:
                self.store.put(data)  # before the partial bytes go: one of them is always there
            part.unlink()
        if actual != digest:
            raise UploadRejected(
                f"the uploaded bytes hash to {actual[:12]}…, not {digest[:12]}…; "
                "nothing was stored: upload the artifact again"
            )
        return UploadState(digest, received, True)

    def _part(self, digest: str) -> Path:
        return private_folder(self.folder) / f"{digest}.part"


@dataclass(frozen=True)
class Abandoned:
    """Partial uploads no client added to for the grace period: the bytes a client that
    gave up left in ``<home>/uploads``."""

    count: int
    bytes: int

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes}


def abandoned_uploads(folder: Path, *, grace_s: float, remove: bool) -> Abandoned:
    """The ``.part`` files untouched for ``grace_s`` (each chunk touches its file),
    removed when ``remove``; an upload still arriving is younger and kept."""
    if not folder.is_dir():
        return Abandoned(0, 0)
    now, count, size = time.time(), 0, 0
    for part in folder.glob("*.part"):
        stat = part.stat()
        if now - stat.st_mtime < grace_s:
            continue
        count, size = count + 1, size + stat.st_size
        if remove:
            part.unlink(missing_ok=True)
    return Abandoned(count, size)
