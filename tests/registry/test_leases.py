"""The fleet's lease in the metadata database, on SQLite and on a real PostgreSQL: one
holder at a time, renewals keep the epoch, a lapsed lease is taken with the next epoch,
and a race between contenders has one winner; the fleet's command log."""

from __future__ import annotations

import threading

from dnnops.registry.db import open_engine
from dnnops.registry.leases import FleetCommands, Lease


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_renewals_keep_the_epoch_and_a_lapsed_lease_moves_on(db_url: str) -> None:
    engine, clock = open_engine(db_url), Clock()
    first = Lease(engine, "leader", "a", ttl_s=10.0, clock=clock)
    second = Lease(engine, "leader", "b", ttl_s=10.0, clock=clock)
    held = first.hold()
    assert held is not None and (held.holder, held.epoch) == ("a", 1)
    assert second.hold() is None, "a running lease has one holder"
    clock.now += 8.0
    renewed = first.hold()
    assert renewed is not None and renewed.epoch == 1 and renewed.expires_at == clock.now + 10
    clock.now += 9.0
    assert second.hold() is None, "renewed: still running"
    clock.now += 2.0  # a's lease lapsed (a was killed, or cut off)
    taken = second.hold()
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    assert first.hold() is None, "the old holder cannot take it back while b renews"
    second.release()
    back = first.hold()
    assert back is not None and (back.holder, back.epoch) == ("a", 3), "released: at once"


def test_contenders_racing_for_a_free_lease_have_one_winner(db_url: str) -> None:
    engine = open_engine(db_url)
    winners: list[str] = []
    start = threading.Barrier(6)

    def contend(name: str) -> None:
        start.wait()
        if Lease(engine, "race", name, ttl_s=30.0).hold() is not None:
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"r{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1, winners
    current = Lease(engine, "race", "observer", ttl_s=1.0).current()
    assert current is not None and current.holder == winners[0] and current.epoch == 1


def test_the_fleet_command_log_reaches_other_replicas_from_where_they_started(
    db_url: str,
) -> None:
    engine = open_engine(db_url)
    early = FleetCommands(engine, "early")
    assert early.new_commands() == []  # marks where it starts
    early.publish({"op": "load", "endpoint": "digits", "version": 2, "live": True})
    late = FleetCommands(engine, "late")
    assert late.new_commands() == [], "a replica started later serves what the aliases say"
    other = FleetCommands(engine, "other")
    other.new_commands()
    late.publish({"op": "load", "endpoint": "digits", "version": 3, "live": True})
    assert [c["version"] for c in early.new_commands()] == [3]
    assert [c["version"] for c in other.new_commands()] == [3]
    assert late.new_commands() == [], "its own commands are not replayed to itself"
    assert early.new_commands() == []
