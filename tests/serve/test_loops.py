"""The one guarded runner of the server's background loops: every tick timed and reported
under its loop's name, a failure counted and backed off, leader-only loops idle elsewhere."""

from __future__ import annotations

import asyncio

import pytest

from dnnops.serve.loops import MAX_BACKOFF_S, BackgroundLoop, LoopRunner, backoff
from dnnops.serve.metrics import CONTROL_LOOPS, ServerMetrics


class Stop(Exception):
    """Ends a run once the test has seen enough sleeps."""


def _runner(leads: bool = True, sleeps_before_stop: int = 5) -> tuple[LoopRunner, list, list]:
    observed: list[tuple[str, float, bool]] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= sleeps_before_stop:
            raise Stop

    def observe(loop: str, seconds: float, failed: bool) -> None:
        observed.append((loop, seconds, failed))

    return LoopRunner(observe, lambda: leads, sleep=sleep), observed, slept


def test_a_failing_tick_is_counted_backed_off_and_the_loop_goes_on() -> None:
    outcomes = iter([RuntimeError("store away"), RuntimeError("still away"), None, None, None])
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        failure = next(outcomes)
        if failure is not None:
            raise failure

    runner, observed, slept = _runner()
    with pytest.raises(Stop):
        asyncio.run(runner.run(BackgroundLoop("fleet_log", 5.0, tick)))
    assert ticks == 5
    assert [failed for _, _, failed in observed] == [True, True, False, False, False]
    assert {loop for loop, _, _ in observed} == {"fleet_log"}
    assert slept == [10.0, 20.0, 5.0, 5.0, 5.0], "doubled per failure, back to the period"


def test_backoff_is_capped_at_a_minute_or_the_period() -> None:
    assert backoff(1.0, 0) == 1.0
    assert backoff(1.0, 20) == MAX_BACKOFF_S
    assert backoff(300.0, 3) == 300.0, "a period longer than the cap is never shortened"


def test_a_leader_only_loop_waits_in_a_process_that_does_not_lead() -> None:
    ticked = []

    async def tick() -> None:
        ticked.append(1)

    runner, observed, slept = _runner(leads=False, sleeps_before_stop=4)
    with pytest.raises(Stop):
        asyncio.run(runner.run(BackgroundLoop("monitor", 60.0, tick, leader_only=True)))
    assert ticked == [] and observed == [] and slept == [60.0] * 4


def test_wait_first_sleeps_a_period_before_the_first_tick() -> None:
    order: list[str] = []

    async def tick() -> None:
        order.append("tick")

    runner, _, slept = _runner(sleeps_before_stop=2)
    with pytest.raises(Stop):
        asyncio.run(runner.run(BackgroundLoop("explanations", 10.0, tick, wait_first=True)))
    assert slept == [10.0, 10.0] and order == ["tick"]


def test_cancelling_stops_a_loop_and_is_not_counted_as_a_failure() -> None:
    observed: list[tuple[str, float, bool]] = []

    async def forever() -> None:
        await asyncio.sleep(3600)

    async def scenario() -> None:
        runner = LoopRunner(lambda *a: observed.append(a), lambda: True)
        [task] = runner.start([BackgroundLoop("loop_lag", 0.05, forever)])
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert observed == []


def test_each_loop_has_its_series_in_the_metrics_from_the_start() -> None:
    metrics = ServerMetrics()
    metrics.observe_loop("lease", 0.2, failed=True)
    text = metrics.exposition().decode()
    for loop in CONTROL_LOOPS:
        assert f'dnnops_controller_errors_total{{loop="{loop}"}}' in text
    assert 'dnnops_controller_errors_total{loop="lease"} 1.0' in text
    assert 'dnnops_controller_tick_seconds_count{loop="lease"} 1.0' in text
