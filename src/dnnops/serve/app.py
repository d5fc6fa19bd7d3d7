"""The ASGI app: Open Inference Protocol v2, the plain v1 routes, metrics and admin.

Handlers read top to bottom: read the body (bounded), decode, check against the schema,
preprocess, queue for a batch, log, encode. Every failure leaves as ``{"error": ...}``
with its status, is counted, and is logged; nothing a client sends can crash a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from dnnops.data.policy import Counts
from dnnops.data.preprocess import apply_preprocessing
from dnnops.errors import DnnopsError, UsageError
from dnnops.models.outputs import NonFiniteOutput, refuse_non_finite
from dnnops.monitor.judgements.alerts import AlertStore
from dnnops.monitor.loop import MonitorLoop
from dnnops.monitor.segments.label_queue import label_queue
from dnnops.predlog.records import RequestContext
from dnnops.rollout.controller import SLOW_TICK_S, RolloutController
from dnnops.rollout.store import RolloutStore
from dnnops.serve.batcher import BatcherClosed, DeadlineExceeded, QueueFull, TooManyRows
from dnnops.serve.control import ServerControl
from dnnops.serve.dashboard_routes import dashboard_routes
from dnnops.serve.errors import (
    BadRequest,
    GatewayTimeout,
    HttpError,
    InvalidOutput,
    LogUnwritable,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    http_error_of,
)
from dnnops.serve.explain_routes import explain_routes, explanation_sampler
from dnnops.serve.feedback import FeedbackVerdicts, feedback_answer
from dnnops.serve.http import (
    JSON,
    Answer,
    RawRequest,
    authorize,
    authorize_scope,
    endpoint_of,
    error_answer,
    install_error_path,
    json_answer,
    json_object,
    json_response,
    read_body,
    v1_instances,
    window_of,
)
from dnnops.serve.loop_lag import PROBE_S, LoopLag
from dnnops.serve.loops import BackgroundLoop, LoopRunner
from dnnops.serve.protocol import encode_response, parse_infer
from dnnops.serve.rollout_routes import rollout_routes
from dnnops.serve.runtime import VersionRuntime
from dnnops.serve.state import ServerState
from dnnops.serve.tracing import record_span, tracer
from dnnops.version import __version__


def _span(name: str, traced: bool) -> contextlib.AbstractContextManager[Any]:
    """A span when an OpenTelemetry SDK is configured; nothing (and no cost) otherwise."""
    return tracer.start_as_current_span(name) if traced else contextlib.nullcontext()


log = logging.getLogger("dnnops.serve")
HEADER_LENGTH = "inference-header-content-length"
UNKNOWN = "unknown"
"""The one label refusals of names the server does not serve are counted under."""


INFER_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
PREDICT_V1 = re.compile(r"^/v1/models/([^/:]+):predict$")


def create_app(state: ServerState) -> InferenceFastPath:
    control = ServerControl(state)
    controller = RolloutController(
        control, RolloutStore(state.registry.engine), AlertStore(state.registry.engine)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if state.fleet is not None:
            await state.fleet.renew()  # know whether this replica leads before the first tick
        await controller.tick()  # resume a rollout a restart interrupted before serving
        runner = LoopRunner(state.metrics.observe_loop, state.leads)
        tasks = runner.start(background_loops(state, control, controller))
        yield
        for task in tasks:
            task.cancel()
        if state.fleet is not None:
            await state.fleet.release()  # another replica leads at once, not a lease later
        await state.stop()

    app = FastAPI(title="dnnops", version=__version__, lifespan=lifespan)
    app.state.dnnops = state
    install_error_path(app)
    _health_routes(app, state)
    _inference_routes(app, state)
    _operations_routes(app, state)
    rollout_routes(app, state, controller)
    dashboard_routes(app, state)
    _monitor_routes(app, state)
    explain_routes(app, state)
    return InferenceFastPath(app, state)


def background_loops(
    state: ServerState, control: ServerControl, controller: RolloutController
) -> list[BackgroundLoop]:
    """What runs beside the requests, each under ``serve/loops.py``'s one guarded runner."""
    policies = state.policies
    lag = LoopLag(state.metrics.event_loop_lag.set)
    loops = [
        BackgroundLoop("rollout", controller.tick_s, controller.tick, slow_s=SLOW_TICK_S),
        BackgroundLoop("loop_lag", PROBE_S, lag.run),  # its tick probes until cancelled
    ]
    fleet, fleet_log = state.fleet, state.fleet_log
    if fleet is not None:

        async def hold_the_lease() -> None:
            """Renew the fleet's lease; ``dnnops_leader`` says who leads."""
            await fleet.renew()
            state.metrics.leader.set(1.0 if state.leads() else 0.0)

        loops.append(BackgroundLoop("lease", fleet.lease.ttl_s / 3, hold_the_lease))
    if fleet_log is not None:

        async def share_the_log() -> None:
            """Ship this replica's new log frames and pull its siblings'; on one host only
            the workers' leader does (its siblings write to the same folder)."""
            if state.leads_here():
                await asyncio.to_thread(fleet_log.ship)
                await asyncio.to_thread(fleet_log.pull)

        loops.append(BackgroundLoop("fleet_log", policies.logs.ship_every, share_the_log))
    if policies.monitor.evaluate_every:
        monitoring = MonitorLoop(control, AlertStore(state.registry.engine))
        every = policies.monitor.evaluate_every
        loops.append(
            BackgroundLoop("monitor", every, monitoring.tick, leader_only=True, wait_first=True)
        )
    if state.metrics.shared_dir is not None:

        async def refresh_shared_metrics() -> None:
            """A worker's queue depths and CPU, copied to the shared metric files."""
            state.metrics.refresh()

        loops.append(BackgroundLoop("shared_metrics", 1.0, refresh_shared_metrics))
    explain = policies.monitor.explain
    if explain.sample > 0:
        loops.append(
            BackgroundLoop(
                "explanations",
                explain.every,
                explanation_sampler(state),
                leader_only=True,
                wait_first=True,
            )
        )
    return loops


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


# -- health and metadata ----------------------------------------------------------------


def _health_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/v2/health/live")
    async def live() -> Response:
        """Liveness (KServe v2): the process answers; never checks a model."""
        return json_response({"live": True})

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        """Readiness (KServe v2): 200 once every version is loaded and warmed up, 503 while
        starting or draining."""
        ready = state.lifecycle.ready
        return json_response({"ready": ready}, 200 if ready else 503)

    @app.get("/v2")
    async def server_metadata() -> Response:
        """Server metadata (KServe v2): name, version and protocol extensions."""
        return json_response(
            {"name": "dnnops", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str, version: str | None = None) -> Response:
        """Model metadata (KServe v2): inputs, outputs, classes and an example instance."""
        return json_response(_runtime(state, name, version).metadata())

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str, version: str | None = None) -> Response:
        """Whether this endpoint (or version) answers now: 200, or 503."""
        runtime = _runtime(state, name, version, need_ready=False)
        ok = runtime.ready and state.lifecycle.ready
        return json_response({"name": name, "ready": ok}, 200 if ok else 503)


# -- inference --------------------------------------------------------------------------


def _inference_routes(app: FastAPI, state: ServerState) -> None:
    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_v2(request: Request, name: str, version: str | None = None) -> Response:
        """Inference (Open Inference Protocol v2): JSON or binary tensors in and out,
        routed to the stable, canary or shadow version."""
        raw = RawRequest(request.scope, request.receive)
        return (await _serve(state, raw, name, version=version, kind="v2")).response()

    @app.post("/v1/models/{name}:predict")
    async def predict_v1(request: Request, name: str) -> Response:
        """Inference, plainly: ``{"instances": [...]}`` in; predictions, probabilities and
        prediction ids out."""
        raw = RawRequest(request.scope, request.receive)
        return (await _serve(state, raw, name, version=None, kind="v1")).response()

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        """Labels for earlier predictions, by prediction id (labels scope); each label's
        status is answered, and only accepted ones are logged."""
        authorize_scope(state, request, "labels")
        labels = _feedback_labels(await read_body(request, state.serve.max_body_bytes))
        judged = await asyncio.to_thread(state.label_gate().judge, labels)
        accepted = judged.verdicts.accepted
        if accepted:  # logged before the answer says so
            try:
                await state.logger.feedback.append_async(state.logger.feedback_records(accepted))
            except OSError as exc:
                raise LogUnwritable("feedback", exc) from None
        _count_feedback(state, judged)
        if judged.relabeled:
            await asyncio.to_thread(_audit_relabels, state, judged)
        return json_response(feedback_answer(labels, judged))


async def _serve(
    state: ServerState, request: RawRequest, name: str, *, version: str | None, kind: str
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
            x = apply_preprocessing(runtime.loaded.preprocessor, raw)
        if checked.anomalies:
            _count_anomalies(state, runtime, checked.anomalies)
        state.lifecycle.arriving -= 1
        arriving = False
        timing: dict[str, float] = {}
        answers = await _infer_watching_client(
            runtime, x, state.serve.timeout, request=request, timing=timing
        )
        probabilities, tiers = runtime.split_tiers(answers)
        _refuse_non_finite(probabilities)
        if "compute_s" in timing:  # model CPU per instance: the cost of a prediction
            threads = runtime.threads
            context.cpu_ms = timing["compute_s"] * 1000 * threads / max(len(x), 1)
        if "finished" in timing:  # model-only latency: its batches, without queue or HTTP
            context.model_ms = (timing["finished"] - timing["started"]) * 1000
        if "finished" in timing and traced:
            record_span("queue", timing["enqueued"], timing["started"])
            record_span("infer", timing["started"], timing["finished"])
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


WATCH_AFTER_S = 0.02
"""A request still queued this long starts watching for its client to leave; quicker ones
never pay for a watcher task (most requests, measured at ~5% of the CPU per request)."""


async def _infer_watching_client(
    runtime: VersionRuntime,
    x: Any,
    timeout: float,
    *,
    request: RawRequest,
    timing: dict[str, float],
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
    kind: str,
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
        x = apply_preprocessing(shadow.loaded.preprocessor, raw)
        answers = await shadow.batcher.submit(x, state.serve.timeout)
        probabilities, tiers = shadow.split_tiers(answers)
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


def _count_feedback(state: ServerState, judged: FeedbackVerdicts) -> None:
    counter = state.metrics.feedback
    relabeled = len(judged.relabeled)
    counter.labels("accepted").inc(len(judged.verdicts.accepted) - relabeled)
    counter.labels("relabeled").inc(relabeled)
    for reason, count in judged.verdicts.refused.items():
        counter.labels(reason).inc(count)


def _audit_relabels(state: ServerState, judged: FeedbackVerdicts) -> None:
    for pid, model, before, after in judged.relabeled:
        state.registry.audit(
            "relabel", model, {"prediction_id": pid, "before": before, "after": after}
        )


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
            [state.logger.failure_record(context, error.status, error.message)]
        )
    except OSError as exc:  # the answer still goes out; /metrics counts the loss
        state.metrics.rejected.labels(*names, "log_unwritable").inc()
        log.warning("could not log a failed request: %s", exc)


def _route(
    state: ServerState, name: str, version: str | None, *, request: RawRequest
) -> tuple[VersionRuntime, VersionRuntime | None]:
    """The version that answers (a pinned version, or the router's pick) and the shadow
    that gets a copy (routed requests only)."""
    if version is not None:
        return _runtime(state, name, version), None
    endpoint = state.endpoints.get(name)
    if endpoint is None or (endpoint.canary is None and endpoint.shadow is None):
        return _runtime(state, name, None), None
    runtime = endpoint.route(request.header(state.serve.sticky_header.lower()))
    if runtime is None or not (runtime.ready and state.lifecycle.ready):
        return _runtime(state, name, None), None  # the same answer an unrouted request gets
    role = "canary" if runtime.version == endpoint.canary else "stable"
    state.metrics.routed.labels(name, runtime.model, runtime.version, role).inc()
    return runtime, endpoint.mirror()


def _runtime(
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


def _header_length(request: RawRequest) -> int | None:
    value = request.header(HEADER_LENGTH)
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest(f"Inference-Header-Content-Length must be a number, got {value!r}")
    return int(value)


def _feedback_labels(body: bytes) -> list[tuple[str, Any]]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    items = payload.get("labels") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest("the body must be {'labels': [{'prediction_id': ..., 'label': ...}, ...]}")
    out = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("prediction_id"), str)
            or "label" not in item
        ):
            raise BadRequest(f"labels[{index}] needs a string 'prediction_id' and a 'label'")
        label = item["label"]
        if isinstance(label, bool) or not isinstance(label, int | float | str):
            raise BadRequest(f"labels[{index}].label must be a class id or name, or a number")
        if isinstance(label, float) and not math.isfinite(label):
            raise BadRequest(f"labels[{index}].label must be a finite number")
        out.append((item["prediction_id"], item["label"]))
    return out


# -- operations -------------------------------------------------------------------------


def _monitor_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/v1/monitor/{name}")
    async def monitor(request: Request, name: str, since: str = "1h") -> Response:
        """SLIs, drift, quality and SLO budgets of an endpoint, as ``dnnops monitor report``."""
        authorize_scope(state, request, "read")
        endpoint_of(state, name)
        window = window_of(since)
        report = await state.report(window)
        return json_response(report.of_endpoint(name).to_json())

    @app.get("/v1/labels/queue/{name}")
    async def labels_queue(
        request: Request,
        name: str,
        *,
        budget: int = 100,
        strategy: str = "uncertainty",
        since: str = "1d",
    ) -> Response:
        """The unlabelled predictions most worth a label, as ``dnnops labels queue``."""
        authorize_scope(state, request, "read")
        endpoint_of(state, name)
        window = window_of(since)
        try:
            items = await asyncio.to_thread(
                label_queue,
                state.logger.logs_dir,
                name,
                budget=budget,
                strategy=strategy,
                since=time.time() - window,
            )
        except UsageError as exc:  # its message names CLI options: --budget is budget here
            raise BadRequest(str(exc).replace("--", "")) from None
        return json_response({"items": [item.to_json() for item in items]})


def _operations_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics ([Metrics](metrics.md)), every worker's added up."""
        return Response(state.metrics.exposition(), 200, media_type="text/plain; version=0.0.4")

    @app.get("/v1/endpoints")
    async def endpoints() -> Response:
        """The endpoints this server serves."""
        return json_response({"endpoints": sorted(state.endpoints)})

    @app.get("/v1/endpoints/{name}")
    async def endpoint(name: str) -> Response:
        """One endpoint: its versions, traffic split and rollout with its last check."""
        return json_response(endpoint_of(state, name).describe())

    @app.post("/v1/endpoints/{name}/versions")
    async def load_version_route(request: Request, name: str) -> Response:
        """Admin: load NAME's version (number or alias), warm it up, and make it live."""
        authorize(state, request)
        payload = json_object(await read_body(request, 64 * 1024))
        model = str(payload.get("model", name))
        ref = str(payload.get("version", "production"))
        record = await asyncio.to_thread(state.registry.resolve, model, ref)
        runtime = await state.load_everywhere(
            name, record, make_live=bool(payload.get("live", True))
        )
        return json_response(
            {"endpoint": name, "loaded": runtime.version, "live": state.endpoints[name].live}
        )
