"""``POST /v1/models/NAME:explain`` and the background explanation sampler's loop.

Explanations run in the server's side process (``report_worker.ReportWorker``, its own
instance): gradients hold the GIL and torch is hundreds of MB, and neither belongs in a
process that answers predictions. The route takes KServe's V1 shape (``{"instances":
[...]}``), validates the instances exactly as ``:predict`` does, and answers the live
version's predictions with each instance's attributions by feature.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import Request, Response

from dnnops.data.preprocess import apply_preprocessing
from dnnops.monitor.explanations import VersionExplainers, explain_rows
from dnnops.serve.errors import (
    BadRequest,
    GatewayTimeout,
    Unavailable,
)
from dnnops.serve.http import (
    Route,
    authorize_scope,
    endpoint_of,
    json_response,
    read_body,
    state_of,
    v1_instances,
)
from dnnops.serve.state import ServerState

log = logging.getLogger("dnnops.serve")


async def _explain(state: ServerState, request: Request, name: str) -> dict[str, Any]:
    endpoint = endpoint_of(state, name)
    runtime = endpoint.runtime()
    if runtime is None or not runtime.ready:
        raise Unavailable(f"{name} has no live version ready to explain yet")
    body = await read_body(request, state.serve.max_body_bytes)
    instances = v1_instances(body)
    limit = state.policies.monitor.explain.max_instances
    if isinstance(instances, list) and len(instances) > limit:
        raise BadRequest(
            f"instances: {len(instances)} in one request; explain at most {limit} "
            "(monitor.explain.max_instances)"
        )
    checked = runtime.adapter.from_v1(instances)
    x = apply_preprocessing(runtime.loaded.preprocessor, checked.raw, inference=True)
    timeout = state.policies.monitor.explain.timeout
    await _load_explainer(state, runtime.model, runtime.version)
    try:
        answer = await asyncio.wait_for(
            _run(state, runtime.model, runtime.version, x=x), timeout=timeout
        )
    except TimeoutError:
        raise GatewayTimeout(
            f"the explanation took longer than {timeout:g} s (monitor.explain.timeout); "
            "send fewer instances"
        ) from None
    outputs = np.asarray(answer["outputs"])
    targets = answer["targets"]
    if runtime.is_regression:
        predictions: list[Any] = outputs[:, 0].tolist()
        explained: list[Any] = [0] * len(targets)
    else:
        predictions = runtime.labels[np.asarray(targets, dtype=int)].tolist()
        explained = predictions
    return {
        "model_name": runtime.model,
        "model_version": runtime.version,
        "predictions": predictions,
        "explanations": [
            {"method": answer["method"], "target": target, "attributions": attributions}
            for target, attributions in zip(explained, answer["attributions"], strict=True)
        ],
    }


async def _load_explainer(state: ServerState, model: str, version: str) -> None:
    """Load the version's explainer before the clock starts: the timeout bounds the
    explanation, not a cold start."""
    if state.explain_worker is not None:
        await state.explain_worker.load_explainer(model, version)
    else:
        await asyncio.to_thread(_in_process(state).explainer, model, version)


async def _run(state: ServerState, model: str, version: str, *, x: np.ndarray) -> dict[str, Any]:
    if state.explain_worker is not None:
        return await state.explain_worker.explain(model, version, x)
    return await asyncio.to_thread(explain_rows, _in_process(state), model, version, x=x)


def _in_process(state: ServerState) -> VersionExplainers:
    """The explainers of a server without a side process (an in-process test server)."""
    if state.explainers is None:
        state.explainers = VersionExplainers(state.registry)
    return state.explainers


def explanation_sampler(state: ServerState) -> Callable[[], Awaitable[None]]:
    """A tick that explains the sampled predictions logged since the server started (the
    runner calls it every ``monitor.explain.every``, in the leader only: the fleet's log
    holds every replica's)."""
    config = state.policies.monitor.explain
    since = time.time()

    async def sample() -> None:
        if state.explain_worker is None:
            return
        counts = await state.explain_worker.sample(config, since=since)
        if counts.explained or counts.skipped:
            state.metrics.explanations.labels("stored").inc(counts.explained)
            state.metrics.explanations.labels("skipped").inc(counts.skipped)

    return sample


async def explain_v1(request: Request, name: str) -> Response:
    """The live version's predictions and each instance's attributions (read scope)."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    return json_response(await _explain(state, request, name))


ROUTES = [
    Route("POST", "/v1/models/{name}:explain", explain_v1),
]
