"""The dynamic batcher of one model version, with Triton's semantics.

Requests queue as rows. When the runner is free the loop forms a batch: it closes when
``max_batch_size`` rows are in it or the oldest row has waited ``max_delay`` (at once if
the delay is 0). A request larger than the space left is split across batches and
reassembled. Rows whose deadline passed are answered 504 and never reach the model;
rows of a request whose client left are dropped. One failing batch fails only its own
requests. The queue is bounded: past ``queue_limit`` rows a request is refused (503).

Batches run on one runner thread, so the event loop keeps serving while the model
computes. A model whose batches take well under a millisecond (every recent one, and
warm-up, below ``INLINE_BELOW_S``) runs on the loop itself instead: handing such a batch to
a thread and back costs more than computing it (two wake-ups of the loop and a GIL switch
each way), and measured on a 64-256-256-10 MLP this served about a third more requests.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]
INLINE_BELOW_S = 0.0005
"""Batches this quick (as an exponential average, warm-up included) run on the loop."""
_SMOOTHING = 0.2


class QueueFull(Exception):
    """The queue holds ``queue_limit`` rows already: answer 503 with Retry-After."""


class TooManyRows(Exception):
    """One request holds more rows than the whole queue may: answer 413, since waiting
    can never make room for it (a 503 would invite a retry that always fails)."""


class DeadlineExceeded(Exception):
    """The request waited past its deadline: answer 504."""


class BatcherClosed(Exception):
    """The version is shutting down: answer 503 (another version or replica takes it)."""


@dataclass(slots=True)
class RequestTiming:
    """When a request's rows were queued, first batched and last finished, and their share
    of the model time of the batches they ran in (tracing, model latency, cost)."""

    enqueued: float = 0.0
    started: float | None = None
    finished: float | None = None
    compute_s: float = 0.0


@dataclass(frozen=True)
class BatchStats:
    size: int
    compute_s: float
    queue_waits_s: list[float]


@dataclass(eq=False)
class _Request:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]
    deadline: float
    enqueued: float
    taken: int = 0
    done_rows: int = 0
    parts: dict[int, np.ndarray] = field(default_factory=dict)
    gone: Callable[[], bool] | None = None
    """True once the client hung up: its rows are dropped when the next batch forms."""
    timing: RequestTiming | None = None
    """Filled for tracing and cost (``RequestTiming``)."""

    @property
    def rows(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class _Slice:
    request: _Request
    start: int
    stop: int


class DynamicBatcher:
    def __init__(
        self,
        predict: Predict,
        max_batch_size: int = 64,
        max_delay_s: float = 0.002,
        *,
        queue_limit: int = 2048,
        on_batch: Callable[[BatchStats], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        arriving: Callable[[], int] | None = None,
    ) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.queue_limit = queue_limit
        self.on_batch = on_batch
        self.clock = clock
        self.arriving = arriving
        """Requests received and not yet queued (decoding, validating); None: unknown."""
        self._queue: collections.deque[_Request] = collections.deque()
        self._queued_rows = 0
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runner")
        self._task: asyncio.Task[None] | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        """Set by ``start``: asking asyncio for the running loop costs a getpid() call."""
        self.closed = False
        self.typical_batch_s = float("inf")
        """Exponential average of batch compute time; unknown (infinite) until measured."""

    @property
    def queue_depth(self) -> int:
        """Rows waiting for a batch."""
        return self._queued_rows

    def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        self._task = self._loop_ref.create_task(self._loop(), name="batcher")

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Finish what is queued (bounded wait), then stop the loop and the runner thread."""
        self.closed = True
        deadline = self.clock() + drain_timeout_s
        while (self._queue or not self._idle.is_set()) and self.clock() < deadline:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for request in self._queue:
            _fail(request, DeadlineExceeded("the server stopped before this request ran"))
        self._queue.clear()
        self._executor.shutdown(wait=True)

    async def warm_up(self, x: np.ndarray) -> None:
        """Run ``x`` on the runner thread now, outside the queue (before traffic)."""
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(self._executor, self.predict, x)
        self._observe(time.perf_counter() - started)

    def _observe(self, seconds: float) -> None:
        typical = self.typical_batch_s
        self.typical_batch_s = (
            seconds if typical == float("inf") else typical + _SMOOTHING * (seconds - typical)
        )

    @property
    def runs_inline(self) -> bool:
        return self.typical_batch_s < INLINE_BELOW_S

    async def infer(
        self, x: np.ndarray, timeout_s: float, timing: RequestTiming | None = None
    ) -> np.ndarray:
        """Model outputs for the rows of ``x``, in order; ``timing`` receives the clock
        readings ``enqueued``, ``started`` and ``finished`` (for queue and infer spans)."""
        return await self.submit(x, timeout_s, timing)  # cancelled with the caller: rows skipped

    def submit(
        self,
        x: np.ndarray,
        timeout_s: float,
        timing: RequestTiming | None = None,
        *,
        gone: Callable[[], bool] | None = None,
    ) -> asyncio.Future[np.ndarray]:
        """Queue ``x`` now and return its future (no task); cancelling it withdraws the rows,
        and so does ``gone`` turning true before they are batched (the future is then
        cancelled)."""
        if self.closed:
            raise BatcherClosed("this model version is shutting down")
        if len(x) > self.queue_limit:
            raise TooManyRows(
                f"the request holds {len(x)} rows; at most {self.queue_limit} fit "
                "(serve.queue_limit): split it into smaller requests, or predict a file "
                "with dnnops predict"
            )
        if self._queued_rows + len(x) > self.queue_limit:
            raise QueueFull(f"{self._queued_rows} rows are queued (limit {self.queue_limit})")
        now = self.clock()
        loop = self._loop_ref or asyncio.get_running_loop()
        request = _Request(x, loop.create_future(), now + timeout_s, now, gone=gone)
        if timing is not None:
            timing.enqueued = now
            request.timing = timing
        self._queue.append(request)
        self._queued_rows += len(x)
        self._arrived.set()
        return request.future

    # -- the loop --------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self._wait_for_work()
            await self._idle.wait()
            await self._wait_for_batch()
            slices = self._take_batch()
            if slices and self.runs_inline:
                self._run_inline(slices)
            elif slices:
                self._idle.clear()
                asyncio.get_running_loop().create_task(self._run(slices))

    async def _wait_for_work(self) -> None:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()

    async def _wait_for_batch(self) -> None:
        """Until the batch is full or the oldest row has waited ``max_delay``, or (with
        ``arriving``) no request the server has received is still on its way to a queue."""
        while self._queue and self._queued_rows < self.max_batch_size:
            if self.arriving is not None and self.arriving() == 0:
                return  # every request received is queued: waiting only adds latency
            remaining = self._queue[0].enqueued + self.max_delay_s - self.clock()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Slice]:
        slices: list[_Slice] = []
        space, now = self.max_batch_size, self.clock()
        while self._queue and space > 0:
            request = self._queue[0]
            if (
                request.future.done()
                or request.deadline <= now
                or (request.gone is not None and request.gone())
            ):
                self._drop_head(now)
                continue
            count = min(space, request.rows - request.taken)
            slices.append(_Slice(request, request.taken, request.taken + count))
            request.taken += count
            self._queued_rows -= count
            space -= count
            if request.taken == request.rows:
                self._queue.popleft()
        return slices

    def _drop_head(self, now: float) -> None:
        request = self._queue.popleft()
        self._queued_rows -= request.rows - request.taken
        if request.gone is not None and request.gone():
            request.future.cancel()  # nobody is waiting for this answer: never compute it
        elif not request.future.done():
            waited = now - request.enqueued
            _fail(
                request,
                DeadlineExceeded(f"waited {waited * 1000:.0f} ms in the queue, past its deadline"),
            )

    async def _run(self, slices: list[_Slice]) -> None:
        started = self._started(slices)
        batch = np.concatenate([s.request.x[s.start : s.stop] for s in slices])
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.predict, batch
            )
        except Exception as exc:  # the model failed on this batch: fail its requests only
            for s in slices:
                _fail(s.request, exc)
            return
        finally:
            self._idle.set()
        self._finish(slices, batch, outputs, started=started)

    def _run_inline(self, slices: list[_Slice]) -> None:
        started = self._started(slices)
        batch = np.concatenate([s.request.x[s.start : s.stop] for s in slices])
        try:
            outputs = self.predict(batch)
        except Exception as exc:  # the model failed on this batch: fail its requests only
            for s in slices:
                _fail(s.request, exc)
            return
        self._finish(slices, batch, outputs, started=started)

    def _started(self, slices: list[_Slice]) -> float:
        started = self.clock()
        for s in slices:
            timing = s.request.timing
            if timing is not None and timing.started is None:
                timing.started = started
        return started

    def _finish(
        self, slices: list[_Slice], batch: np.ndarray, outputs: np.ndarray, *, started: float
    ) -> None:
        finished = self.clock()
        self._observe(finished - started)
        if self.on_batch is not None:
            waits = [started - s.request.enqueued for s in slices]
            self.on_batch(BatchStats(len(batch), finished - started, waits))
        offset = 0
        for s in slices:
            count = s.stop - s.start
            timing = s.request.timing
            if timing is not None:
                timing.finished = finished
                timing.compute_s += (finished - started) * count / len(batch)  # its rows' part
            _deliver(s.request, s.start, outputs[offset : offset + count])
            offset += count


def _deliver(request: _Request, start: int, outputs: np.ndarray) -> None:
    if request.future.done():
        return
    request.parts[start] = outputs
    request.done_rows += len(outputs)
    if request.done_rows == request.rows:
        ordered = [request.parts[k] for k in sorted(request.parts)]
        request.future.set_result(ordered[0] if len(ordered) == 1 else np.concatenate(ordered))


def _fail(request: _Request, error: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(error)
