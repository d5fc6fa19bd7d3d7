"""A content-addressed artifact store: bytes go in, a SHA-256 comes out, and every read
checks that the bytes still hash to it.

Keys are digests only (64 lowercase hex characters), so no caller-supplied name ever
becomes a path: nothing can escape the store. A local folder is written atomically
(temporary file, fsync, rename); any other fsspec URL (``s3://``, ``memory://``) goes
through fsspec, with exclusive creation (S3's ``If-None-Match: *``): two writers of the
same artifact never overwrite each other's object, and an object already there is kept
(its bytes are checked on every read). An S3-compatible endpoint other than AWS is named
by botocore's ``AWS_ENDPOINT_URL``.

A store that cannot be reached (a network partition, credentials refused) raises
``ArtifactStoreUnreachable`` (HTTP 503), distinct from an artifact that is missing or
damaged (``ArtifactError``, 500).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import fsspec

from dnnops.encryption import (
    SealError,
    is_sealed,
    open_if_sealed,
    process_sealer,
    s3_encryption,
)
from dnnops.errors import DnnopsError
from dnnops.files import atomic_write, private_folder

DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(DnnopsError):
    """An artifact is missing, tampered with or truncated."""

    http_status = 500


class ArtifactStoreUnreachable(ArtifactError):
    """The store did not answer: nothing is known about the artifact itself."""

    http_status = 503


T = TypeVar("T")


class ArtifactStore(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, digest: str, name: str = "artifact") -> bytes: ...

    def exists(self, digest: str) -> bool: ...

    def local_path(self, digest: str) -> Path | None: ...

    def stored(self) -> list[StoredArtifact]: ...

    def delete(self, digest: str) -> None: ...


@dataclass(frozen=True)
class StoredArtifact:
    digest: str
    size: int
    modified: float | None
    """Unix seconds of its last write (None where the backend does not say)."""


ESCAPED = b"\x00DNCLEAR"
"""Before a clear artifact whose own bytes begin like a sealed blob (or like this mark):
the stored form says which it is, so no plaintext is ever taken for a seal."""


def escape_clear(data: bytes) -> bytes:
    """The stored form of clear ``data``: itself, unless it begins like a seal."""
    return ESCAPED + data if is_sealed(data) or data.startswith(ESCAPED) else data


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise ArtifactError(f"{digest!r} is not a SHA-256 digest; artifact keys are 64 hex digits")
    return digest


class FsspecArtifactStore:
    """Artifacts under ``url``: ``<url>/sha256/ab/abcdef...``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **s3_encryption(self.url))
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
        sealer = process_sealer()  # DNNOPS_ENCRYPTION_KEY_FILE: stored sealed
        stored = sealer.seal(data) if sealer is not None else escape_clear(data)
        if self.is_local:
            private_folder(Path(self.root))
            atomic_write(Path(key), stored)
        else:
            self._reach(lambda: self._create(key, stored), f"storing {digest[:12]}…")
        return digest

    def _create(self, key: str, data: bytes) -> None:
        with contextlib.suppress(FileExistsError):  # another writer stored it first
            self.fs.pipe_file(key, data, mode="create")

    def _reach(self, call: Callable[[], T], doing: str) -> T:
        """``call`` on the store, a failure to reach it named as such."""
        try:
            return call()
        except (FileNotFoundError, ArtifactError):
            raise
        except Exception as exc:  # each backend has its own errors (botocore's, OSError)
            raise ArtifactStoreUnreachable(
                f"the artifact store {self.url} could not be reached while {doing} "
                f"({type(exc).__name__}: {exc}); versions already loaded keep serving"
            ) from exc

    def get(self, digest: str, name: str = "artifact") -> bytes:
        """The bytes of ``digest``; ``name`` says which artifact in any error."""
        key = self._key(digest)
        try:
            data: bytes = self._reach(lambda: self.fs.cat_file(key), f"reading {name}")
        except FileNotFoundError:
            raise ArtifactError(
                f"{name} ({digest[:12]}…) is missing from the artifact store {self.url}"
            ) from None
        if data.startswith(ESCAPED):
            data = data[len(ESCAPED) :]  # clear bytes that began like a seal (escape_clear)
        else:
            try:
                data = open_if_sealed(data, f"{name} ({digest[:12]}…)")
            except SealError as exc:
                raise ArtifactError(str(exc)) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactError(
                f"{name} ({digest[:12]}…) failed its integrity check: the stored bytes hash to "
                f"{actual[:12]}… ({len(data)} bytes); the file was modified or truncated"
            )
        return data

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        return bool(self._reach(lambda: self.fs.exists(key), f"looking up {digest[:12]}…"))

    def local_path(self, digest: str) -> Path | None:
        """The file's path when the store is a local folder (for tests and tools)."""
        return Path(self._key(digest)) if self.is_local else None

    def stored(self) -> list[StoredArtifact]:
        """Every artifact in the store, for garbage collection."""
        top = f"{self.root}/sha256"
        found = self._reach(
            lambda: self.fs.find(top, detail=True) if self.fs.exists(top) else {},
            "listing the artifacts",
        )
        out = []
        for path, info in found.items():
            digest = str(path).rsplit("/", 1)[-1]
            if DIGEST.match(digest):
                out.append(StoredArtifact(digest, int(info.get("size") or 0), _modified(info)))
        return out

    def stored_bytes(self, digest: str) -> bytes:
        """The artifact as stored (sealed when encrypted), for key rotation."""
        key = self._key(digest)
        found: bytes = self._reach(lambda: self.fs.cat_file(key), f"reading {digest[:12]}…")
        return found

    def replace_stored(self, digest: str, blob: bytes) -> None:
        """Overwrite the stored form of ``digest`` (a re-wrapped seal: the same plaintext)."""
        key = self._key(digest)
        if self.is_local:
            atomic_write(Path(key), blob)
        else:
            self._reach(lambda: self.fs.pipe_file(key, blob), f"rewriting {digest[:12]}…")

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        with contextlib.suppress(FileNotFoundError):
            self._reach(lambda: self.fs.rm_file(key), f"deleting {digest[:12]}…")


def _modified(info: dict[str, Any]) -> float | None:
    """A listing entry's last write: ``mtime`` (local), ``LastModified`` (S3)."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


def open_store(url: str) -> FsspecArtifactStore:
    return FsspecArtifactStore(url)
