"""Following a log as it grows: the frames appended since the last look.

A background reader (the explanation sampler) must not re-read an hour-long live segment
every few seconds: each segment is read from where the last call stopped, up to its last
whole frame. Segments written before ``since`` are not read at all.
"""

from __future__ import annotations

from pathlib import Path

from dnnops.predlog.frames import FrameStats, iter_frames
from dnnops.predlog.reader import segment_modified, segments


class LogFollower:
    def __init__(self, folder: Path, prefix: str, *, since: float) -> None:
        self.folder, self.prefix, self.since = folder, prefix, since
        self._read: dict[Path, int] = {}

    def new_frames(self) -> list[bytes]:
        """Each frame's payload appended to the log since the last call, oldest first."""
        out: list[bytes] = []
        listed = segments(self.folder, self.prefix)
        for segment in listed:
            offset = self._read.get(segment)
            if offset is None and segment_modified(segment) < self.since:
                continue
            try:
                with segment.open("rb") as file:
                    file.seek(offset or 0)
                    data = file.read()
            except FileNotFoundError:  # removed by retention since it was listed
                continue
            stats = FrameStats()
            out.extend(iter_frames(data, stats))
            self._read[segment] = (offset or 0) + stats.end
        alive = set(listed)
        self._read = {s: o for s, o in self._read.items() if s in alive}
        return out
