"""Crash-safe file writes and digests, shared by checkpoints, weights and artifacts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
SHARED_FILE = 0o644
"""What a file the user asked for (an export, a report) is written with."""


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part:
    temporary file, fsync, rename, fsync of the folder. dnnops's own state (weights,
    artifacts, runs, which may hold training values) is readable by its owner alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)  # an older temporary file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


def private_folder(folder: Path) -> Path:
    """``folder``, created if need be, that only its owner may enter (0700): the home,
    the artifact store and the logs hold training values and live inputs. A folder owned
    by someone else is left as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    if folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o077:
        folder.chmod(PRIVATE_FOLDER)
    return folder


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
