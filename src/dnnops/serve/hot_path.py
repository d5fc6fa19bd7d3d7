"""The inference hot path: a request to ``/v2/models/NAME/infer`` or
``/v1/models/NAME:predict`` read, checked, queued for a batch, logged and answered
(``InferenceFastPath`` skips FastAPI's routing for it). Every failure leaves as
``{"error": ...}`` with its status, is counted and logged; nothing a client sends can crash
a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from dnnops.config import ServeConfig
from dnnops.data.policy import Counts
from dnnops.data.preprocess import apply_preprocessing, describe_inputs, preview_inputs
from dnnops.errors import DnnopsError
from dnnops.inference.logger import MediaLog
from dnnops.models.outputs import NonFiniteOutput, refuse_non_finite
from dnnops.predlog.records import RequestContext
from dnnops.serve.batcher import (
    BatcherClosed,
    DeadlineExceeded,
    QueueFull,
    RequestTiming,
    TooManyRows,
)
from dnnops.serve.errors import (
    BadRequest,
    GatewayTimeout,
    HttpError,
    InvalidOutput,
    LogUnwritable,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    Unprocessable,
    http_error_of,
)
from dnnops.serve.http import (
    JSON,
    Answer,
    InferenceRequest,
    RawRequest,
    Route,
    error_answer,
    json_answer,
    state_of,
    v1_instances,
)
from dnnops.serve.protocol import encode_response, parse_infer
from dnnops.serve.runtime import VersionRuntime
from dnnops.serve.state import ServerState
from dnnops.serve.tracing import record_span, tracer

log = logging.getLogger("dnnops.serve")
Wire = Literal["v1", "v2"]
"""Which protocol a request came in: the answer is encoded the same way."""
INFER_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
PREDICT_V1 = re.compile(r"^/v1/models/([^/:]+):predict$")


def _span(name: str, traced: bool) -> contextlib.AbstractContextManager[Any]:
    """A span when an OpenTelemetry SDK is configured; nothing (and no cost) otherwise."""
    return tracer.start_as_current_span(name) if traced else contextlib.nullcontext()


HEADER_LENGTH = "inference-header-content-length"


UNKNOWN = "unknown"
"""The one label refusals of names the server does not serve are counted under."""


class InferenceFastPath:
    """Inference requests skip FastAPI's middleware and routing layers (about half of the
    per-request CPU under load, measured with py-spy); every other route, the lifespan
    and the OpenAPI document go through FastAPI, where the same handlers are declared."""

    def __init__(self, app: FastAPI, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if match := INFER_V2.match(path):
                answer = await _serve(
                    self.state, RawRequest(scope, receive), match[1], version=match[2], kind="v2"
                )
                await answer.send(send)
                return
            if match := PREDICT_V1.match(path):
                answer = await _serve(
                    self.state, RawRequest(scope, receive), match[1], version=None, kind="v1"
                )
                await answer.send(send)
                return
        await self.app(scope, receive, send)


async def infer_answer(
    state: ServerState,
    request: InferenceRequest,
    name: str,
    *,
    version: str | None,
    deadline_s: float | None,
) -> Answer:
    """A binary or JSON v2 request from another front end (gRPC) through the same path,
    its own deadline bounding the request as ``serve.timeout`` does."""
    return await _serve(state, request, name, version=version, kind="v2", deadline_s=deadline_s)


async def _serve(
    state: ServerState,
    request: InferenceRequest,
    name: str,
    *,
    version: str | None,
    kind: Wire,
    deadline_s: float | None = None,
) -> Answer:
    started = time.perf_counter()
    context = RequestContext(endpoint=name, protocol=kind, replica=state.replica)
    traced = state.traced
    state.lifecycle.arriving += 1  # until queued: a batcher waits for requests still on their way
    arriving = True
    try:
        _attribute(state, name, version, context=context)
        body = await request.body(state.serve.max_body_bytes)
        with _span("decode", traced):
            parsed = (
                parse_infer(body, _header_length(request)) if kind == "v2" else v1_instances(body)
            )
            runtime, shadow = _route(state, name, version, request=request)
            context.model, context.version = runtime.model, runtime.version
            adapter = runtime.adapter
            checked = adapter.from_v2(parsed.inputs) if kind == "v2" else adapter.from_v1(parsed)
            raw = checked.raw
            made = await _model_input(runtime, raw, state.serve, deadline_s=deadline_s)
            x, timeout = made.x, made.time_left
        if checked.anomalies:
            _count_anomalies(state, runtime, checked.anomalies)
        state.lifecycle.arriving -= 1
        arriving = False
        timing = RequestTiming()
        answers = await _infer_watching_client(runtime, x, timeout, request=request, timing=timing)
        split = runtime.split_answers(answers)
        probabilities, tiers = split.probabilities, split.tiers
        _refuse_non_finite(probabilities)
        if timing.finished is not None and timing.started is not None:
            # model CPU per instance (the cost of a prediction), and model-only latency: its
            # batches, without queue or HTTP
            context.cpu_ms = timing.compute_s * 1000 * runtime.threads / max(len(x), 1)
            context.model_ms = (timing.finished - timing.started) * 1000
            if traced:
                record_span("queue", timing.enqueued, timing.started)
                record_span("infer", timing.started, timing.finished)
        with _span("encode", traced):
            response, ids = await _answer(
                state,
                runtime,
                parsed,
                raw=raw,
                probabilities=probabilities,
                tiers=tiers,
                context=context,
                started=started,
                kind=kind,
                media=made.media,
                embeddings=split.embeddings,
            )
        if shadow is not None and shadow is not runtime:
            _mirror_later(state, shadow, raw, ids=ids, context=context)
        return response
    except HttpError as error:
        await _record_failure(state, context, error)
        return error_answer(error)
    except DnnopsError as exc:  # the inference core's: inputs refused (422), ...
        refused = http_error_of(exc)
        await _record_failure(state, context, refused)
        return error_answer(refused)
    except Exception as exc:  # a bug, or a model that fails: 500 for this request only
        log.exception("request to %s failed", name)
        internal = HttpError(f"internal error: {type(exc).__name__}: {exc}")
        await _record_failure(state, context, internal)
        return error_answer(internal)
    finally:
        if arriving:
            state.lifecycle.arriving -= 1


@dataclass(frozen=True)
class ModelInput:
    x: np.ndarray
    media: MediaLog | None
    """An image or text model's descriptors and previews of the inputs, to log."""
    time_left: float
    """What is left of the request's timeout for the queue and the model."""


async def _model_input(
    runtime: VersionRuntime, raw: Any, serve: ServeConfig, *, deadline_s: float | None = None
) -> ModelInput:
    """The request's model input and, for an image or text model, what is logged of it
    beyond the inputs. A table's input is made on the loop (microseconds); decoding images
    or tokenizing takes milliseconds, so it runs in a worker thread within the request's
    deadline."""
    pre, timeout = runtime.loaded.preprocessor, serve.timeout
    if deadline_s is not None:  # the caller's own deadline (gRPC's), when it is sooner
        if deadline_s <= 0:
            raise GatewayTimeout("the request's deadline passed before it was queued")
        timeout = min(timeout, deadline_s)
    if pre.medium is None:
        return ModelInput(_computable(apply_preprocessing(pre, raw, inference=True)), None, timeout)
    logged = serve.log_inputs > 0  # a preview is logged with the inputs, or not made
    began = time.perf_counter()

    def work() -> ModelInput:
        x = apply_preprocessing(pre, raw, inference=True)
        media = MediaLog(describe_inputs(pre, raw, x), preview_inputs(pre, x) if logged else None)
        return ModelInput(x, media, timeout)

    try:
        made = await asyncio.wait_for(asyncio.to_thread(work), timeout)
    except TimeoutError:
        raise GatewayTimeout(f"decoding the inputs took over {timeout:g} s") from None
    left = timeout - (time.perf_counter() - began)
    if left <= 0:
        raise GatewayTimeout(f"decoding the inputs took over {timeout:g} s")
    return replace(made, time_left=left)


WATCH_AFTER_S = 0.02
"""A request still queued this long starts watching for its client to leave; quicker ones
never pay for a watcher task (most requests, measured at ~5% of the CPU per request)."""


async def _infer_watching_client(
    runtime: VersionRuntime,
    x: Any,
    timeout: float,
    *,
    request: InferenceRequest,
    timing: RequestTiming,
) -> Any:
    """Queue ``x``; if the client disconnects first, withdraw it so the model never runs it.

    Under uvicorn the batcher reads the connection's disconnected flag as it forms each
    batch, at no cost; elsewhere a watcher task waits for ``http.disconnect``."""
    gone = request.client_gone()
    try:
        work = runtime.batcher.submit(x, timeout, timing, gone=gone)
    except (QueueFull, BatcherClosed) as exc:
        raise Unavailable(f"{exc}; retry shortly", {"Retry-After": "1"}) from None
    except TooManyRows as exc:
        raise PayloadTooLarge(str(exc)) from None
    if gone is not None:
        return await _result(work, gone)
    watcher: list[asyncio.Future[Any]] = []

    def watch() -> None:  # completes when the client disconnects
        left = asyncio.ensure_future(request.receive())
        left.add_done_callback(lambda _: work.cancel())
        watcher.append(left)

    later = asyncio.get_running_loop().call_later(WATCH_AFTER_S, watch)
    try:
        return await _result(work, lambda: bool(watcher) and _completed(watcher[0]))
    finally:
        later.cancel()
        for left in watcher:
            left.cancel()


def _completed(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled()


async def _result(work: asyncio.Future[Any], gone: Callable[[], bool]) -> Any:
    """The batch's answer for this request, its failures named for HTTP."""
    try:
        return await work
    except asyncio.CancelledError:
        if gone():
            raise BadRequest("the client disconnected before its result was ready") from None
        raise
    except DeadlineExceeded as exc:
        raise GatewayTimeout(f"timed out in the queue: {exc}") from None


async def _answer(
    state: ServerState,
    runtime: VersionRuntime,
    parsed: Any,
    *,
    raw: Any,
    probabilities: Any,
    tiers: np.ndarray | None,
    context: RequestContext,
    started: float,
    kind: Wire,
    media: MediaLog | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[Answer, list[str]]:
    outputs = runtime.outputs(probabilities)
    labels = outputs[0].array
    ids = state.logger.new_ids(len(labels))
    headers = {"x-prediction-id": ",".join(ids), "x-model-version": runtime.version}
    # The answer is encoded before anything is logged: a request that fails here is a
    # 500 in the log, never a logged success the client did not get.
    if kind == "v2":
        body, header_length = encode_response(
            runtime.endpoint,
            runtime.version,
            parsed,
            outputs=outputs,
            extra={"prediction_ids": ids},
        )
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
        response = Answer(
            200, body, headers, JSON if header_length is None else "application/octet-stream"
        )
    else:
        answer: dict[str, Any] = {
            "predictions": labels.tolist(),  # labels as in training, or numbers
            "prediction_ids": ids,
            "model_version": runtime.version,
        }
        if not runtime.is_regression:
            answer["probabilities"] = probabilities
        response = json_answer(answer, 200, headers)
    context.latency_ms = (time.perf_counter() - started) * 1000
    scores = None if runtime.is_regression else probabilities
    records = state.logger.prediction_records(
        ids,
        context,
        raw,
        labels=labels,
        probabilities=scores,
        tiers=tiers,
        redaction=runtime.redaction,
        media=media,
        embeddings=embeddings,
    )
    try:  # handed to the OS before we answer
        await state.logger.predictions.append_async(records)
    except OSError as exc:
        raise LogUnwritable("prediction", exc) from None
    state.label_gate().remember(ids, runtime.model, runtime.version)
    _count(state, context, 200, rows=len(labels), seconds=time.perf_counter() - started)
    return response, ids


def _mirror_later(
    state: ServerState, shadow: VersionRuntime, raw: Any, *, ids: list[str], context: RequestContext
) -> None:
    """Run the shadow on a copy of the request after the client has its answer."""
    task = asyncio.get_running_loop().create_task(
        _mirror(state, shadow, raw, ids=ids, answered=context)
    )
    state.lifecycle.background.add(task)
    task.add_done_callback(state.lifecycle.background.discard)


async def _mirror(
    state: ServerState,
    shadow: VersionRuntime,
    raw: Any,
    *,
    ids: list[str],
    answered: RequestContext,
) -> None:
    """Predict with the shadow and log it; a full queue drops the copy, never a request."""
    names = (shadow.endpoint, shadow.model, shadow.version)
    context = RequestContext(
        endpoint=answered.endpoint,
        protocol=answered.protocol,
        model=shadow.model,
        version=shadow.version,
        shadow=True,
        replica=answered.replica,
    )
    started = time.perf_counter()
    try:
        made = await _model_input(shadow, raw, state.serve)
        answers = await shadow.batcher.submit(made.x, made.time_left)
        split = shadow.split_answers(answers)
        probabilities, tiers = split.probabilities, split.tiers
        _refuse_non_finite(probabilities)
    except (QueueFull, BatcherClosed, TooManyRows):
        state.metrics.shadow.labels(*names, "dropped").inc()
        return
    except Exception as exc:  # a failing shadow is recorded against the shadow only
        status = 504 if isinstance(exc, DeadlineExceeded) else 500
        state.metrics.shadow.labels(*names, "failed").inc()
        failure = state.logger.failure_record(context, status, f"{type(exc).__name__}: {exc}")
        await _log_shadow(state, names, [failure])
        return
    labels = shadow.outputs(probabilities)[0].array
    context.latency_ms = (time.perf_counter() - started) * 1000
    shadow_ids = [f"{pid}.s{shadow.version}" for pid in ids]
    scores = None if shadow.is_regression else probabilities
    records = state.logger.prediction_records(
        shadow_ids,
        context,
        raw,
        labels=labels,
        probabilities=scores,
        tiers=tiers,
        shadow_of=ids,
        redaction=shadow.redaction,
        media=made.media,
        embeddings=split.embeddings,
    )
    if await _log_shadow(state, names, records):
        state.metrics.shadow.labels(*names, "ok").inc()


async def _log_shadow(
    state: ServerState, names: tuple[str, str, str], records: list[bytes]
) -> bool:
    """Log a shadow's records; a log that refuses the write (a full disk) drops the copy."""
    try:
        await state.logger.predictions.append_async(records)
    except OSError:
        state.metrics.shadow.labels(*names, "dropped").inc()
        return False
    return True


def _count_anomalies(state: ServerState, runtime: VersionRuntime, counts: Counts) -> None:
    counter = state.metrics.input_anomalies
    for (feature, anomaly), rows in counts.items():
        counter.labels(runtime.endpoint, runtime.model, runtime.version, feature, anomaly).inc(rows)


def _count(
    state: ServerState, context: RequestContext, status: int, *, rows: int, seconds: float
) -> None:
    names = context.names
    state.metrics.request_done(names, status, rows, seconds=seconds)


def _refuse_non_finite(outputs: np.ndarray) -> None:
    """A NaN or infinite output is the model failing: answered 500 and counted against
    availability, where argmax would have answered class 0 and counted a success."""
    try:
        refuse_non_finite(outputs)
    except NonFiniteOutput as exc:
        raise InvalidOutput(str(exc)) from None


def _attribute(
    state: ServerState, name: str, version: str | None, *, context: RequestContext
) -> None:
    """Name the request's endpoint and (until it is routed) its version in ``context``,
    so a refusal is counted and logged under names the server serves: a request to a made-up
    model is refused 404 under the one ``unknown`` endpoint and logged nowhere, and never
    adds a metric series, a report row or an alert of its own."""
    endpoint = state.endpoints.get(name)
    if endpoint is None:
        context.endpoint = UNKNOWN
        raise NotFound(f"unknown model {name!r}; this server serves {sorted(state.endpoints)}")
    runtime, live = endpoint.runtime(version), endpoint.runtime()
    if runtime is not None:
        context.model, context.version = runtime.model, runtime.version
    elif live is not None:  # a version it does not have: routing refuses it 404
        context.model, context.version = live.model, UNKNOWN


async def _record_failure(state: ServerState, context: RequestContext, error: HttpError) -> None:
    _count(state, context, error.status, rows=0, seconds=0.0)
    names = context.names
    if isinstance(error, LogUnwritable):
        state.metrics.rejected.labels(*names, "log_unwritable").inc()
        return  # the log it would go to refuses writes
    if error.status == 503:
        state.metrics.rejected.labels(*names, "overloaded").inc()
    elif error.status == 504:
        state.metrics.timed_out.labels(*names).inc()
    elif error.status in (400, 413, 422):
        state.metrics.rejected.labels(*names, "invalid").inc()
    if error.status == 404:
        return
    try:
        await state.logger.predictions.append_async(
            [state.logger.failure_record(context, error.status, error.message, reason=error.reason)]
        )
    except OSError as exc:  # the answer still goes out; /metrics counts the loss
        state.metrics.rejected.labels(*names, "log_unwritable").inc()
        log.warning("could not log a failed request: %s", exc)


def _route(
    state: ServerState, name: str, version: str | None, *, request: InferenceRequest
) -> tuple[VersionRuntime, VersionRuntime | None]:
    """The version that answers (a pinned version, or the router's pick) and the shadow
    that gets a copy (routed requests only)."""
    if version is not None:
        return runtime_of(state, name, version), None
    endpoint = state.endpoints.get(name)
    if endpoint is None or (endpoint.canary is None and endpoint.shadow is None):
        return runtime_of(state, name, None), None
    runtime = endpoint.route(request.header(state.serve.sticky_header.lower()))
    if runtime is None or not (runtime.ready and state.lifecycle.ready):
        return runtime_of(state, name, None), None  # the same answer an unrouted request gets
    role = "canary" if runtime.version == endpoint.canary else "stable"
    state.metrics.routed.labels(name, runtime.model, runtime.version, role).inc()
    return runtime, endpoint.mirror()


def runtime_of(
    state: ServerState, name: str, version: str | None, *, need_ready: bool = True
) -> VersionRuntime:
    endpoint = state.endpoints.get(name)
    if endpoint is None:
        raise NotFound(f"unknown model {name!r}; this server serves {sorted(state.endpoints)}")
    runtime = endpoint.runtime(version)
    if runtime is None:
        raise NotFound(
            f"model {name!r} has no loaded version {version!r}; loaded: {sorted(endpoint.versions)}"
        )
    if need_ready and not (runtime.ready and state.lifecycle.ready):
        raise Unavailable(
            "the server is not ready (loading, warming up or draining)", {"Retry-After": "1"}
        )
    return runtime


def _computable(x: np.ndarray) -> np.ndarray:
    """A value no float32 can hold (1e308, scaled) would make the model answer NaN: a 500
    that burns the availability budget for the client's number. Refused instead, naming
    the instance (one sum tells the common case)."""
    if math.isfinite(float(np.add.reduce(x, axis=None))):
        return x
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if not len(bad):
        return x  # finite values whose sum overflows: the model decides
    raise Unprocessable(
        f"instances{bad[:5].tolist()}: a value too large to compute with (it overflows float32 "
        "once scaled); send values within the training range, or set serve.out_of_range: clip"
    )


def _header_length(request: InferenceRequest) -> int | None:
    value = request.header(HEADER_LENGTH)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise BadRequest(f"Inference-Header-Content-Length must be a number, got {value!r}")
    return int(value)


async def infer_v2(request: Request, name: str, version: str | None = None) -> Response:
    """Inference (Open Inference Protocol v2): JSON or binary tensors in and out, routed to
    the stable, canary or shadow version."""
    raw = RawRequest(request.scope, request.receive)
    return (await _serve(state_of(request), raw, name, version=version, kind="v2")).response()


async def predict_v1(request: Request, name: str) -> Response:
    """Inference, plainly: ``{"instances": [...]}`` in; predictions, probabilities and
    prediction ids out."""
    raw = RawRequest(request.scope, request.receive)
    return (await _serve(state_of(request), raw, name, version=None, kind="v1")).response()


ROUTES = [  # the same handlers InferenceFastPath reaches, declared for FastAPI and OpenAPI
    Route("POST", "/v2/models/{name}/infer", infer_v2),
    Route("POST", "/v2/models/{name}/versions/{version}/infer", infer_v2),
    Route("POST", "/v1/models/{name}:predict", predict_v1),
]
