"""The dashboard page, its static files, its data, and the prediction tracer."""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dnnops.dashboard.data import dashboard_data
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, read_feedback, read_predictions
from dnnops.serve.errors import BadRequest, Forbidden, NotFound
from dnnops.serve.http import (
    Route,
    authorize_scope,
    endpoint_of,
    json_response,
    state_of,
    window_of,
)
from dnnops.serve.state import ServerState

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
}
"""The only files served: names are looked up here, never joined to a path."""
PREDICTION_ID = re.compile(r"^[0-9A-Za-z._-]{1,128}$")


def static_file(name: str) -> bytes:
    return resources.files("dnnops.dashboard").joinpath("static", name).read_bytes()


def find_prediction(state: ServerState, prediction_id: str) -> dict[str, Any] | None:
    logs = state.logger.logs_dir
    record, shadows = None, []
    for candidate in read_predictions(logs / PREDICTIONS):
        if candidate.id == prediction_id:
            record = candidate
        elif candidate.shadow_of == prediction_id:
            shadows.append(candidate.to_json())
    if record is None:
        return None
    feedback = read_feedback(logs / FEEDBACK).get(prediction_id)
    label = None if feedback is None else feedback.label
    return {"prediction": record.to_json(), "label": label, "shadows": shadows}


async def dashboard(request: Request) -> Response:
    """The web dashboard: executive, on-call and debug views (works offline)."""
    page = static_file("index.html")
    return Response(page, 200, media_type="text/html; charset=utf-8")


async def dashboard_static(request: Request, name: str) -> Response:
    """The dashboard's scripts and styles (bundled: it works offline)."""
    media = STATIC.get(name)
    if media is None:
        raise NotFound(f"no dashboard file {name!r}")
    headers = {"Cache-Control": "max-age=300"}
    return Response(static_file(name), 200, headers, media_type=media)


async def data(request: Request, name: str, since: str = "1h") -> Response:
    """Everything the dashboard shows for endpoint ``name`` over ``since``."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    endpoint = endpoint_of(state, name)
    window = window_of(since)
    policies = state.policies
    if state.report_worker is not None:  # a report holds the GIL: never in this process
        document = await state.report_worker.dashboard(
            name,
            window,
            live=dict(endpoint.describe()),
            monitor=policies.monitor,
            slo=policies.slo,
        )
        return json_response(document.to_dict())
    loaded = state.loaded_versions()
    document = await asyncio.to_thread(
        dashboard_data,
        state.registry,
        state.logger.logs_dir,
        name,
        window_s=window,
        monitor=state.policies.monitor,
        slo=state.policies.slo,
        loaded=loaded,
        live=endpoint.describe(),
        now=None,
        store=state.report_digests(),
    )
    return json_response(document.to_dict())


async def trace(request: Request, prediction_id: str) -> Response:
    """One prediction by id: inputs, output, version, latency, its label and shadows."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "read")
    if not PREDICTION_ID.match(prediction_id):
        raise BadRequest("prediction_id: letters, digits, '.', '-', '_'")
    found = await asyncio.to_thread(find_prediction, state, prediction_id)
    if found is None:
        raise NotFound(f"no prediction {prediction_id!r} in the log")
    model = found["prediction"].get("model")
    if caller is not None and not caller.allows("reader", model):
        raise Forbidden(f"{caller.name!r} ({caller.described}) may not read {model}'s predictions")
    return json_response(found)


ROUTES = [
    Route("GET", "/dashboard", dashboard),
    Route("GET", "/dashboard/static/{name}", dashboard_static),
    Route("GET", "/v1/dashboard/{name}", data),
    Route("GET", "/v1/predictions/{prediction_id}", trace),
]
