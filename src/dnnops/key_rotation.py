"""``dnnops keys rotate``: every sealed artifact and log record re-wrapped under the current
key-encryption key. Only the 40-byte wrapped data key in each header changes; the
ciphertext is written back as it was, so bulk data is never encrypted a second time.

A log segment written to in the last ``QUIET_S`` is left for a later run (a server may
still append to it); so is one with damaged frames (rewriting it could lose the records a
reader resynchronises to). Readers keep the old key in ``DNNOPS_ENCRYPTION_OLD_KEY_FILES``
until a run reports nothing left."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnops.encryption import Sealer, is_sealed
from dnnops.files import atomic_write
from dnnops.predlog.frames import FrameStats, encode_frame, stored_frames
from dnnops.registry.artifacts import FsspecArtifactStore

QUIET_S = 600.0


@dataclass
class Rotated:
    rewrapped: int = 0
    """Artifacts and log segments whose seals now name the current key."""
    current: int = 0
    """Already under the current key."""
    plain: int = 0
    """Written before encryption was on: left as they are."""
    left: list[str] = field(default_factory=list)
    """Segments still being written, or damaged: run again later."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def rotate_artifacts(store: FsspecArtifactStore, sealer: Sealer, out: Rotated) -> None:
    for artifact in store.stored():
        blob = store.stored_bytes(artifact.digest)
        if not is_sealed(blob):
            out.plain += 1
            continue
        rewrapped = sealer.rewrap(blob, f"artifact {artifact.digest[:12]}…")
        if rewrapped is None:
            out.current += 1
            continue
        store.replace_stored(artifact.digest, rewrapped)
        out.rewrapped += 1


def rotate_logs(logs_dir: Path, sealer: Sealer, out: Rotated, *, quiet_s: float = QUIET_S) -> None:
    now = time.time()
    for segment in sorted(logs_dir.rglob("*.log")):
        if now - segment.stat().st_mtime < quiet_s:
            out.left.append(str(segment))
            continue
        data = segment.read_bytes()
        stats = FrameStats()
        frames = list(stored_frames(data, stats))
        if stats.corrupt or stats.torn_tail:
            out.left.append(str(segment))
            continue
        if not any(sealed for sealed, _ in frames):
            out.plain += 1
            continue
        rewrapped = [
            sealer.rewrap(payload, f"a record of {segment.name}") if sealed else None
            for sealed, payload in frames
        ]
        if all(r is None for r in rewrapped):
            out.current += 1
            continue
        body = b"".join(
            encode_frame(new if new is not None else payload, sealed=sealed)
            for (sealed, payload), new in zip(frames, rewrapped, strict=True)
        )
        atomic_write(segment, body)
        out.rewrapped += 1
