"""The loop-lag probe reports how long the loop was held, and the watchdog names where."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

import pytest

from dnnops.serve.loop_lag import WINDOW_S, LoopLag, holding_frames


def test_a_held_loop_shows_in_the_gauge_and_the_log_names_the_culprit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reported: list[float] = []

    def hold_the_loop_for_a_while() -> None:
        time.sleep(0.4)  # the kind of call that must never run on the loop

    async def scenario() -> None:
        probe = asyncio.get_running_loop().create_task(LoopLag(reported.append).run())
        await asyncio.sleep(0.3)
        quiet = max(reported)
        hold_the_loop_for_a_while()
        await asyncio.sleep(0.2)
        hold_the_loop_for_a_while()  # a second stall within the minute: counted, not logged
        await asyncio.sleep(0.2)
        probe.cancel()
        assert quiet < 0.1, f"an idle loop lagged {quiet:.3f} s"

    with caplog.at_level(logging.WARNING, logger="dnnops.serve"):
        asyncio.run(scenario())
    assert max(reported) >= 0.3
    assert reported[-1] >= 0.3, "the worst lag of the window is still reported after it"
    [warning] = [r for r in caplog.records if "event loop has been held" in r.getMessage()]
    message = warning.getMessage()
    assert "hold_the_loop_for_a_while" in message and "scenario" in message
    assert "base_events.py" not in message and "pytest" not in message  # not the outer frames


def test_a_stack_of_loop_machinery_only_says_so() -> None:
    machinery = traceback.StackSummary.from_list(
        [
            ("/usr/lib/python3.11/site-packages/uvicorn/server.py", 68, "serve", "x"),
            ("/usr/lib/python3.11/asyncio/base_events.py", 1922, "_run_once", "x"),
        ]
    )
    assert "many short callbacks" in holding_frames(machinery)
    mixed = traceback.StackSummary.from_list(
        [*machinery, ("/srv/dnnops/serve/app.py", 10, "predict", "slow()")]
    )
    shown = holding_frames(mixed)
    assert "app.py" in shown and "uvicorn" not in shown


def test_the_gauge_forgets_a_stall_once_it_leaves_the_window() -> None:
    now = [100.0]
    lag = LoopLag(lambda _: None, clock=lambda: now[0])
    assert lag.observe(0.5) == 0.5
    now[0] += WINDOW_S / 2
    assert lag.observe(0.01) == 0.5
    now[0] += WINDOW_S
    assert lag.observe(-0.001) == 0.01, "the stall left the window; a negative lag is 0"
    now[0] += 1.0
    assert lag.observe(0.0) == 0.0
