"""The folder worker processes share: one leader at a time, and a command log each worker
replays without its own lines, whole lines only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dnnops.serve.group import WorkerGroup


def test_only_one_holder_leads_and_a_dead_leaders_lock_passes_on(tmp_path: Path) -> None:
    WorkerGroup.create(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; from dnnops.serve.group import WorkerGroup;"
            f"g = WorkerGroup(Path({str(tmp_path)!r})); print(g.leads(), flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        follower = WorkerGroup(tmp_path)
        assert not follower.leads()
        assert not follower.leads()  # asking again changes nothing while the leader lives
    finally:
        holder.kill()
        holder.communicate()
    assert follower.leads()  # the kernel released the dead leader's lock
    assert follower.leads()


def test_commands_reach_the_siblings_in_order_and_never_their_author(tmp_path: Path) -> None:
    first = WorkerGroup.create(tmp_path)
    second, third = WorkerGroup(tmp_path), WorkerGroup(tmp_path)
    first.publish({"op": "load", "version": 2})
    second.publish({"op": "load", "version": 3})
    assert [c["version"] for c in first.new_commands()] == [3]
    assert [c["version"] for c in second.new_commands()] == [2]
    assert [c["version"] for c in third.new_commands()] == [2, 3]
    assert third.new_commands() == []
    with open(tmp_path / "commands.jsonl", "ab") as log:  # a sibling halfway through a line
        log.write(b'{"op": "load", "version": 4')
    assert third.new_commands() == []
    with open(tmp_path / "commands.jsonl", "ab") as log:
        log.write(b', "origin": "elsewhere"}\n')
    assert [c["version"] for c in third.new_commands()] == [4]
    assert os.path.isdir(first.metrics_dir)
