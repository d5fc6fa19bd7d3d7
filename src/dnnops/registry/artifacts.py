"""A content-addressed artifact store: bytes go in, a SHA-256 comes out, and every read
checks that the bytes still hash to it.

Keys are digests only (64 lowercase hex characters), so no caller-supplied name ever
becomes a path: nothing can escape the store. A local folder is written atomically
(temporary file, fsync, rename); any other fsspec URL (``s3://``, ``memory://``) goes
through fsspec, whose object stores replace objects whole.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

import fsspec

from dnnops.errors import DnnopsError
from dnnops.files import atomic_write

DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(DnnopsError):
    """An artifact is missing, tampered with or truncated."""

    http_status = 500


class ArtifactStore(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, digest: str, name: str = "artifact") -> bytes: ...

    def exists(self, digest: str) -> bool: ...

    def local_path(self, digest: str) -> Path | None: ...


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise ArtifactError(f"{digest!r} is not a SHA-256 digest; artifact keys are 64 hex digits")
    return digest


class FsspecArtifactStore:
    """Artifacts under ``url``: ``<url>/sha256/ab/abcdef...``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.is_local = "file" in protocols

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.root}/sha256/{digest[:2]}/{digest}"

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest)
        if self.exists(digest):
            return digest  # same content, same key: nothing to write
        if self.is_local:
            atomic_write(Path(key), data)
        else:
            self.fs.pipe_file(key, data)
        return digest

    def get(self, digest: str, name: str = "artifact") -> bytes:
        """The bytes of ``digest``; ``name`` says which artifact in any error."""
        key = self._key(digest)
        try:
            data: bytes = self.fs.cat_file(key)
        except FileNotFoundError:
            raise ArtifactError(
                f"{name} ({digest[:12]}…) is missing from the artifact store {self.url}"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactError(
                f"{name} ({digest[:12]}…) failed its integrity check: the stored bytes hash to "
                f"{actual[:12]}… ({len(data)} bytes); the file was modified or truncated"
            )
        return data

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def local_path(self, digest: str) -> Path | None:
        """The file's path when the store is a local folder (for tests and tools)."""
        return Path(self._key(digest)) if self.is_local else None


def open_store(url: str) -> FsspecArtifactStore:
    return FsspecArtifactStore(url)
