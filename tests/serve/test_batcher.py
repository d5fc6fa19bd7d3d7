"""The batcher's contract, with a real thread running a fake model."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from dnnops.serve import hot_path
from dnnops.serve.batcher import (
    BatchStats,
    DeadlineExceeded,
    DynamicBatcher,
    QueueFull,
    RequestTiming,
)
from dnnops.serve.errors import BadRequest
from dnnops.serve.http import RawRequest


class RecordingModel:
    """Doubles its input and remembers every batch; can be slowed down or made to fail."""

    def __init__(self, delay_s: float = 0.0, fail_on: float | None = None) -> None:
        self.batches: list[np.ndarray] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.release = threading.Event()
        self.release.set()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.release.wait(5)
        time.sleep(self.delay_s)
        self.batches.append(x.copy())
        if self.fail_on is not None and (x == self.fail_on).any():
            raise RuntimeError("model exploded")
        return x * 2


def _rows(*values: float) -> np.ndarray:
    return np.array(values, dtype="float32").reshape(-1, 1)


async def _with(batcher: DynamicBatcher) -> DynamicBatcher:
    batcher.start()
    return batcher


def test_results_are_reassembled_in_order_across_batches() -> None:
    async def scenario() -> None:
        model = RecordingModel()
        batcher = await _with(DynamicBatcher(model, max_batch_size=4, max_delay_s=0.0))
        result = await batcher.infer(_rows(*range(10)), timeout_s=5)
        assert result.ravel().tolist() == [2.0 * i for i in range(10)]
        assert [len(b) for b in model.batches] == [4, 4, 2]
        await batcher.stop()

    asyncio.run(scenario())


def test_concurrent_requests_share_batches_up_to_the_limit() -> None:
    async def scenario() -> None:
        model = RecordingModel()
        stats: list[BatchStats] = []
        batcher = await _with(
            DynamicBatcher(model, max_batch_size=8, max_delay_s=0.05, on_batch=stats.append)
        )
        results = await asyncio.gather(*(batcher.infer(_rows(i), 5) for i in range(8)))
        assert [r.item() for r in results] == [2.0 * i for i in range(8)]
        assert [len(b) for b in model.batches] == [8]  # full batch closed before the delay
        assert stats[0].size == 8
        await batcher.stop()

    asyncio.run(scenario())


def test_a_lone_request_waits_at_most_the_delay() -> None:
    async def scenario() -> None:
        batcher = await _with(DynamicBatcher(RecordingModel(), max_batch_size=64, max_delay_s=0.03))
        started = time.monotonic()
        await batcher.infer(_rows(1), 5)
        assert 0.025 <= time.monotonic() - started < 0.5
        await batcher.stop()

    asyncio.run(scenario())


def test_full_queue_is_refused_and_expired_rows_never_reach_the_model() -> None:
    async def scenario() -> None:
        model = RecordingModel()
        model.release.clear()  # the runner blocks on the first batch
        batcher = await _with(
            DynamicBatcher(model, max_batch_size=2, max_delay_s=0.0, queue_limit=4)
        )
        first = asyncio.ensure_future(batcher.infer(_rows(1), timeout_s=5))
        await asyncio.sleep(0.05)  # batch [1] is running and blocked
        expiring = asyncio.ensure_future(batcher.infer(_rows(7, 7), timeout_s=0.01))
        waiting = asyncio.ensure_future(batcher.infer(_rows(3, 4), timeout_s=5))
        await asyncio.sleep(0.02)
        with pytest.raises(QueueFull):
            await batcher.infer(_rows(5), timeout_s=5)
        await asyncio.sleep(0.05)
        model.release.set()
        assert (await first).item() == 2.0
        with pytest.raises(DeadlineExceeded):
            await expiring
        assert (await waiting).ravel().tolist() == [6.0, 8.0]
        assert not any((b == 7).any() for b in model.batches)
        await batcher.stop()

    asyncio.run(scenario())


def test_a_failing_batch_fails_only_its_own_requests() -> None:
    async def scenario() -> None:
        model = RecordingModel(fail_on=13)
        batcher = await _with(DynamicBatcher(model, max_batch_size=1, max_delay_s=0.0))
        good, bad, after = await asyncio.gather(
            batcher.infer(_rows(1), 5),
            batcher.infer(_rows(13), 5),
            batcher.infer(_rows(2), 5),
            return_exceptions=True,
        )
        assert isinstance(bad, RuntimeError)
        assert isinstance(good, np.ndarray) and good.item() == 2.0
        assert isinstance(after, np.ndarray) and after.item() == 4.0
        await batcher.stop()

    asyncio.run(scenario())


def test_cancelled_requests_are_not_run() -> None:
    async def scenario() -> None:
        model = RecordingModel()
        model.release.clear()
        batcher = await _with(DynamicBatcher(model, max_batch_size=1, max_delay_s=0.0))
        blocker = asyncio.ensure_future(batcher.infer(_rows(1), 5))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.infer(_rows(99), 5))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client disconnected
        model.release.set()
        await blocker
        await batcher.infer(_rows(2), 5)
        assert not any((b == 99).any() for b in model.batches)
        assert batcher.queue_depth == 0
        await batcher.stop()

    asyncio.run(scenario())


def test_rows_of_a_client_that_hung_up_are_dropped_when_the_batch_forms() -> None:
    async def scenario() -> None:
        model = RecordingModel()
        model.release.clear()
        batcher = await _with(DynamicBatcher(model, max_batch_size=1, max_delay_s=0.0))
        blocker = batcher.submit(_rows(1), 5)
        await asyncio.sleep(0.05)
        hung_up = False
        abandoned = batcher.submit(_rows(99), 5, gone=lambda: hung_up)
        waiting = batcher.submit(_rows(2), 5, gone=lambda: False)
        hung_up = True  # the connection closed while the rows were queued
        model.release.set()
        await blocker
        assert (await waiting).item() == 4.0
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        assert not any((b == 99).any() for b in model.batches)
        assert batcher.queue_depth == 0
        await batcher.stop()

    asyncio.run(scenario())


def test_quick_batches_run_on_the_loop_and_slow_ones_on_the_runner_thread() -> None:
    """Quickness is measured on the batcher's clock; here the model moves that clock by
    its own delay, so a pause of the machine cannot make a quick batch look slow."""

    class ThreadRecorder:
        def __init__(self, delay_s: float, fake_clock: bool) -> None:
            self.delay_s = delay_s
            self.fake_clock = fake_clock
            self.now = 0.0
            self.threads: list[str] = []

        def clock(self) -> float:
            return self.now if self.fake_clock else time.monotonic()

        def __call__(self, x: np.ndarray) -> np.ndarray:
            self.threads.append(threading.current_thread().name)
            if self.fake_clock:
                self.now += self.delay_s
            else:
                time.sleep(self.delay_s)
            return x * 2

    async def scenario(delay_s: float, fake_clock: bool = True) -> list[str]:
        model = ThreadRecorder(delay_s, fake_clock)
        batcher = await _with(
            DynamicBatcher(model, max_batch_size=4, max_delay_s=0.0, clock=model.clock)
        )
        await batcher.warm_up(_rows(0))
        for value in range(1, 21):
            assert (await batcher.infer(_rows(value), 5)).item() == 2 * value
        if delay_s == 0.0:  # a quick model that turns slow goes back to the thread
            model.delay_s = 0.02
            for value in range(21, 31):
                await batcher.infer(_rows(value), 5)
        await batcher.stop()
        return model.threads

    quick = asyncio.run(scenario(0.0))
    loop_thread = threading.current_thread().name
    assert quick[0].startswith("runner")  # warm-up, measured
    assert quick[16:21] == [loop_thread] * 5  # measured quick: on the loop
    assert quick[-1].startswith("runner")
    slow = asyncio.run(scenario(0.002, fake_clock=False))  # 2 ms is never quick
    assert all(name.startswith("runner") for name in slow)


def test_a_batch_closes_early_once_every_received_request_is_queued() -> None:
    async def waited(arriving: int) -> float:
        batcher = await _with(
            DynamicBatcher(
                RecordingModel(), max_batch_size=64, max_delay_s=0.3, arriving=lambda: arriving
            )
        )
        started = time.monotonic()
        await batcher.infer(_rows(1), 5)
        await batcher.stop()
        return time.monotonic() - started

    assert asyncio.run(waited(0)) < 0.1  # nothing else on its way: no reason to wait
    assert asyncio.run(waited(1)) >= 0.25  # another request is being read: wait for it


def test_a_server_without_a_disconnect_flag_watches_for_the_client_leaving() -> None:
    """The fallback of the inference path: a watcher task reads ``http.disconnect``."""

    async def scenario() -> None:
        model = RecordingModel()
        model.release.clear()
        batcher = await _with(DynamicBatcher(model, max_batch_size=1, max_delay_s=0.0))
        blocker = batcher.submit(_rows(1), 5)
        await asyncio.sleep(0.05)

        async def receive() -> dict[str, str]:  # a plain function: no uvicorn flag to read
            await asyncio.sleep(hot_path.WATCH_AFTER_S * 2)
            return {"type": "http.disconnect"}

        request = RawRequest({"headers": []}, receive)
        assert request.client_gone() is None
        runtime = SimpleNamespace(batcher=batcher)
        with pytest.raises(BadRequest, match="disconnected"):
            await hot_path._infer_watching_client(
                runtime, _rows(99), 5, request=request, timing=RequestTiming()
            )  # type: ignore[arg-type]
        model.release.set()
        await blocker
        await batcher.infer(_rows(2), 5)
        assert not any((b == 99).any() for b in model.batches)
        await batcher.stop()

    asyncio.run(scenario())
