"""Health and metadata, as KServe's v2 protocol has them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from dnnops.serve.hot_path import runtime_of
from dnnops.serve.http import Route, json_response, state_of
from dnnops.version import __version__


async def live(request: Request) -> Response:
    """Liveness (KServe v2): the process answers; never checks a model."""
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    """Readiness (KServe v2): 200 once every version is loaded and warmed up, 503 while
    starting or draining."""
    answers = state_of(request).lifecycle.ready
    return json_response({"ready": answers}, 200 if answers else 503)


async def server_metadata(request: Request) -> Response:
    """Server metadata (KServe v2): name, version and protocol extensions."""
    return json_response(
        {"name": "dnnops", "version": __version__, "extensions": ["binary_tensor_data"]}
    )


async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
    """Model metadata (KServe v2): inputs, outputs, classes and an example instance."""
    return json_response(runtime_of(state_of(request), name, version).metadata())


async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    """Whether this endpoint (or version) answers now: 200, or 503."""
    state = state_of(request)
    runtime = runtime_of(state, name, version, need_ready=False)
    ok = runtime.ready and state.lifecycle.ready
    return json_response({"name": name, "ready": ok}, 200 if ok else 503)


ROUTES = [
    Route("GET", "/v2/health/live", live),
    Route("GET", "/v2/health/ready", ready),
    Route("GET", "/v2", server_metadata),
    Route("GET", "/v2/models/{name}", model_metadata),
    Route("GET", "/v2/models/{name}/versions/{version}", model_metadata),
    Route("GET", "/v2/models/{name}/ready", model_ready),
    Route("GET", "/v2/models/{name}/versions/{version}/ready", model_ready),
]
