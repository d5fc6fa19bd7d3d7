"""Checkpoints written atomically and loaded without unpickling code.

A checkpoint file is written to a temporary name, fsynced and renamed; then the pointer
``latest.json`` (file name and SHA-256) is replaced the same way. A crash at any moment
leaves the previous pointer and its file intact, and a load verifies the digest.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from dnnops.errors import CheckpointError
from dnnops.files import atomic_write

POINTER = "latest.json"


def save_checkpoint(
    folder: Path, step: int, epoch: int, *, payload: dict[str, Any], keep: int
) -> tuple[Path, str]:
    """Write ``step-NNNNNNNN.pt``, point ``latest.json`` at it, prune old files.

    Returns the file and its SHA-256.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = folder / f"step-{step:08d}.pt"
    atomic_write(path, data)
    pointer = {"file": path.name, "sha256": digest, "step": step, "epoch": epoch}
    atomic_write(folder / POINTER, json.dumps(pointer).encode())
    _prune(folder, keep)
    return path, digest


def load_latest(folder: Path) -> dict[str, Any]:
    """The newest checkpoint's payload, its digest verified, loaded with ``weights_only``."""
    pointer_path = folder / POINTER
    if not pointer_path.is_file():
        raise CheckpointError(
            f"no checkpoint in {folder}: the run never finished a checkpoint step"
        )
    pointer = json.loads(pointer_path.read_text())
    path = folder / pointer["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    if hashlib.sha256(data).hexdigest() != pointer["sha256"]:
        raise CheckpointError(f"checkpoint {path} is corrupt: its SHA-256 differs from {POINTER}")
    payload: dict[str, Any] = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    return payload


def _prune(folder: Path, keep: int) -> None:
    files = sorted(folder.glob("step-*.pt"))
    for old in files[:-keep]:
        old.unlink(missing_ok=True)
