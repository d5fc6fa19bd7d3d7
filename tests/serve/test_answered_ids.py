"""The map of answered prediction ids ``/v1/feedback`` checks labels against: every id it
holds is found with the version that answered it, the oldest go first once it is full,
and a million ids fit in tens of megabytes (they took ~400 MB as strings)."""

from __future__ import annotations

import tracemalloc

from dnnops.serve.feedback import AnsweredIds


def test_ids_are_found_with_their_version_until_the_oldest_go() -> None:
    answered = AnsweredIds(capacity=1000, chunk=100)
    for batch in range(15):
        ids = [f"p-{batch}-{i}" for i in range(100)]
        answered.add(ids, "digits", str(batch % 3 + 1))
    assert len(answered) <= 1000
    assert answered.get("p-14-99") == ("digits", "3")  # frozen, newest chunk
    assert answered.get("p-5-0") == ("digits", "3")
    assert answered.get("p-0-0") is None, "the oldest chunks went first"
    answered.add(["late"], "digits", "9")
    assert answered.get("late") == ("digits", "9")  # not frozen yet
    assert answered.get("never-answered") is None


def test_a_million_ids_fit_in_tens_of_megabytes() -> None:
    ids = [f"{i:08x}-{i:x}" for i in range(1_000_000)]  # made before measuring
    tracemalloc.start()
    try:
        answered = AnsweredIds()
        for start in range(0, len(ids), 4):
            answered.add(ids[start : start + 4], "digits", "1")
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(answered) == 1_000_000
    assert answered.get(ids[123_456]) == ("digits", "1")
    assert held < 40 * 1024 * 1024, f"{held / 2**20:.0f} MiB"
