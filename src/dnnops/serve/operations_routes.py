"""Operations: metrics, the endpoints and loading a version into one, the monitoring
report and the labelling queue of an endpoint."""

from __future__ import annotations

import asyncio
import time

from fastapi import Request
from fastapi.responses import Response

from dnnops.errors import UsageError
from dnnops.monitor.segments.label_queue import label_queue
from dnnops.serve.errors import BadRequest, Conflict
from dnnops.serve.http import (
    Route,
    authorize,
    authorize_scope,
    endpoint_of,
    json_object,
    json_response,
    read_body,
    state_of,
    window_of,
)


async def metrics(request: Request) -> Response:
    """Prometheus metrics ([Metrics](metrics.md)), every worker's added up."""
    exposition = state_of(request).metrics.exposition()
    return Response(exposition, 200, media_type="text/plain; version=0.0.4")


async def endpoints(request: Request) -> Response:
    """The endpoints this server serves."""
    return json_response({"endpoints": sorted(state_of(request).endpoints)})


async def endpoint(request: Request, name: str) -> Response:
    """One endpoint: its versions, traffic split and rollout with its last check."""
    return json_response(endpoint_of(state_of(request), name).describe())


async def load_version(request: Request, name: str) -> Response:
    """Admin: load NAME's version (number or alias), warm it up, and make it live."""
    state = state_of(request)
    await authorize(state, request, model=name)
    payload = json_object(await read_body(request, 64 * 1024))
    model = str(payload.get("model", name))
    ref = str(payload.get("version", "production"))
    live = payload.get("live", True)
    if not isinstance(live, bool):
        raise BadRequest(f"live: true or false, not {live!r}")
    record = await asyncio.to_thread(state.registry.resolve, model, ref)
    held = (
        state.endpoints[name].versions.get(str(record.version)) if name in state.endpoints else None
    )
    if held is not None and held.model != record.model:
        raise Conflict(
            f"endpoint {name!r} already serves version {record.version} of {held.model}; "
            f"{record.model}@{record.version} needs an endpoint of its own"
        )
    runtime = await state.load_everywhere(name, record, make_live=live)
    return json_response(
        {"endpoint": name, "loaded": runtime.version, "live": state.endpoints[name].live}
    )


async def monitor(request: Request, name: str, since: str = "1h") -> Response:
    """SLIs, drift, quality and SLO budgets of an endpoint, as ``dnnops monitor report``."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    endpoint_of(state, name)
    report = await state.report(window_of(since))
    return json_response(report.of_endpoint(name).to_json())


async def labels_queue(
    request: Request,
    name: str,
    *,
    budget: int = 100,
    strategy: str = "uncertainty",
    since: str = "1d",
) -> Response:
    """The unlabelled predictions most worth a label, as ``dnnops labels queue``."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
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


ROUTES = [
    Route("GET", "/metrics", metrics),
    Route("GET", "/v1/endpoints", endpoints),
    Route("GET", "/v1/endpoints/{name}", endpoint),
    Route("POST", "/v1/endpoints/{name}/versions", load_version),
    Route("GET", "/v1/monitor/{name}", monitor),
    Route("GET", "/v1/labels/queue/{name}", labels_queue),
]
