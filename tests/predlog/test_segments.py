from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.predlog.frames import FrameStats, encode_frame, iter_frames
from dnnops.predlog.reader import read_records, segments
from dnnops.predlog.writer import RotationPolicy, SegmentWriter


def _payload(i: int) -> bytes:
    return orjson.dumps({"id": f"p{i}", "value": i})


def test_group_commit_writes_everything_in_order(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, "predictions").start()

    async def produce() -> None:
        await asyncio.gather(*(writer.append_async([_payload(i)]) for i in range(500)))

    asyncio.run(produce())
    writer.close()
    assert [r["value"] for r in read_records(tmp_path, "predictions")] == list(range(500))


def test_rotation_by_size_and_age(tmp_path: Path) -> None:
    now = [1000.0]
    writer = SegmentWriter(
        tmp_path, "p", RotationPolicy(max_bytes=200, max_age_s=60), clock=lambda: now[0]
    )
    writer.start()
    for i in range(10):
        writer.append([_payload(i)])
        writer.flush()
    now[0] += 61
    writer.append([_payload(10)])
    writer.close()
    files = segments(tmp_path, "p")
    assert len(files) == 3  # 5 records fit in 200 bytes, then one more for age
    assert [r["value"] for r in read_records(tmp_path, "p")] == list(range(11))
    restarted = SegmentWriter(tmp_path, "p").start()  # a new process continues the sequence
    restarted.append([_payload(11)])
    restarted.close()
    assert len(segments(tmp_path, "p")) == len(files) + 1
    assert [r["value"] for r in read_records(tmp_path, "p")][-1] == 11


def test_a_torn_tail_is_detected_and_skipped(tmp_path: Path) -> None:
    data = b"".join(encode_frame(_payload(i)) for i in range(5))
    (tmp_path / "p-20260101T000000-000000-abcdef.log").write_bytes(
        data + encode_frame(_payload(5))[:-3]
    )
    stats = FrameStats()
    assert [r["value"] for r in read_records(tmp_path, "p", stats)] == list(range(5))
    assert stats.torn_tail and stats.corrupt == 0


def test_a_corrupt_frame_in_the_middle_is_skipped_not_misread() -> None:
    frames = [encode_frame(_payload(i)) for i in range(3)]
    damaged = bytearray(frames[1])
    damaged[-2] ^= 0xFF
    stats = FrameStats()
    out = list(iter_frames(frames[0] + bytes(damaged) + frames[2], stats))
    assert out == [_payload(0), _payload(2)]
    assert stats.corrupt == 1 and not stats.torn_tail


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=64), max_size=20), st.integers(0, 2000))
def test_any_truncation_yields_a_prefix_of_the_records(payloads: list[bytes], cut: int) -> None:
    data = b"".join(encode_frame(p) for p in payloads)
    out = list(iter_frames(data[: min(cut, len(data))]))
    assert out == payloads[: len(out)]


def test_reading_since_a_moment_skips_segments_last_written_before_it(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "predictions"
    folder.mkdir()
    old, new = folder / "predictions-a-000000-x.log", folder / "predictions-b-000001-x.log"
    old.write_bytes(encode_frame(orjson.dumps({"id": "old", "ts": 100.0})))
    new.write_bytes(encode_frame(orjson.dumps({"id": "new", "ts": 5000.0})))
    os.utime(old, (200.0, 200.0))
    os.utime(new, (5000.0, 5000.0))
    assert [r["id"] for r in read_records(folder, "predictions")] == ["old", "new"]
    assert [r["id"] for r in read_records(folder, "predictions", since=1000.0)] == ["new"]
