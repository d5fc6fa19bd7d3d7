"""Record framing: ``magic | length | crc32 | payload``, so a reader can tell a whole
record from a torn or corrupted one and never misreads either. A frame whose payload is
sealed at rest (``dnnops.encryption``) has its own magic, ``SEALED``, so no payload is
ever mistaken for a seal; it is opened as it is read, and one whose seal was tampered with
is skipped and counted like a corrupt frame."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from dnnops.encryption import Tampered, open_if_sealed

MAGIC = b"DNL1"
SEALED = b"DNS1"
"""The magic of a frame whose payload is sealed."""
HEADER = struct.Struct("<4sII")  # magic, payload length, CRC-32 of the payload
MAX_PAYLOAD = 64 * 1024 * 1024


def encode_frame(payload: bytes, *, sealed: bool = False) -> bytes:
    magic = SEALED if sealed else MAGIC
    return HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


@dataclass
class FrameStats:
    frames: int = 0
    corrupt: int = 0
    """Frames skipped because their checksum or length was wrong."""
    tampered: int = 0
    """Sealed frames whose authentication failed (counted in ``corrupt`` too)."""
    torn_tail: bool = False
    """The data ended inside a frame: a writer was killed mid-write."""
    end: int = 0
    """Bytes read up to the end of the last whole frame (or of skipped damage): a reader of
    a growing segment starts there next time."""


def iter_frames(data: bytes, stats: FrameStats | None = None) -> Iterator[bytes]:
    """Every intact payload in ``data``, sealed ones opened; resynchronises on the next
    magic after damage."""
    stats = stats if stats is not None else FrameStats()
    for sealed, payload in stored_frames(data, stats):
        if sealed:
            try:
                payload = open_if_sealed(payload, "a log record")
            except Tampered:  # a missing key (KeyMissing) is raised: nothing can be read
                stats.frames -= 1
                stats.corrupt += 1
                stats.tampered += 1
                continue
        yield payload


def stored_frames(data: bytes, stats: FrameStats | None = None) -> Iterator[tuple[bool, bytes]]:
    """Every intact frame as stored: whether it is sealed, and its payload (key rotation
    re-wraps the sealed ones)."""
    stats = stats if stats is not None else FrameStats()
    position, size = 0, len(data)
    while position < size:
        if size - position < HEADER.size:
            stats.torn_tail = True
            return
        magic, length, checksum = HEADER.unpack_from(data, position)
        end = position + HEADER.size + length
        if magic not in (MAGIC, SEALED) or length > MAX_PAYLOAD:
            stats.corrupt += 1
            position = stats.end = _next_magic(data, position + 1)
            continue
        if end > size:
            if _next_magic(data, position + 1) >= size:
                stats.torn_tail = True
                return
            stats.corrupt += 1
            position = stats.end = _next_magic(data, position + 1)
            continue
        payload = data[position + HEADER.size : end]
        if zlib.crc32(payload) != checksum:
            stats.corrupt += 1
            position = stats.end = _next_magic(data, position + 1)
            continue
        stats.frames += 1
        stats.end = end
        yield magic == SEALED, payload
        position = end


def _next_magic(data: bytes, start: int) -> int:
    found = [f for f in (data.find(MAGIC, start), data.find(SEALED, start)) if f >= 0]
    return min(found) if found else len(data)
