"""Admin routes of rollouts: start a canary (or shadow, blue-green), roll back now."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from dnnops.config import RolloutConfig
from dnnops.rollout.begin import begin_rollout
from dnnops.rollout.controller import RolloutController
from dnnops.rollout.policy import RolloutState
from dnnops.serve.errors import BadRequest, Conflict
from dnnops.serve.http import (
    Route,
    authorize,
    endpoint_of,
    json_object,
    json_response,
    read_body,
    state_of,
)
from dnnops.serve.runtime import Endpoint
from dnnops.serve.state import ServerState

BODY_LIMIT = 64 * 1024
POLICY_FIELDS = ("steps", "mode", "interval", "min_requests", "failure_threshold")


async def _begin(
    state: ServerState,
    controller: RolloutController,
    endpoint: Endpoint,
    *,
    payload: dict[str, Any],
) -> RolloutState:
    if "version" not in payload:
        raise BadRequest("version: required, e.g. {'version': 4, 'steps': [5, 50, 100]}")
    overrides = {k: payload[k] for k in POLICY_FIELDS if k in payload}
    try:
        policy = RolloutConfig.model_validate({**state.policies.rollout.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{field}: {first['msg']} (got {first.get('input')!r})") from None
    stable = endpoint.runtime()
    return await asyncio.to_thread(
        begin_rollout,
        controller.store,
        state.registry,
        endpoint.name,
        model=stable.model if stable is not None else endpoint.name,
        ref=str(payload["version"]),
        policy=policy,
        baseline=int(stable.version) if stable is not None else None,
        approval=bool(payload.get("approval", False)),
        force=bool(payload.get("force", False)),
    )


async def start_rollout(request: Request, name: str) -> Response:
    """Admin: start a rollout of a version on this endpoint (policy from dnnops.yaml,
    ``steps``, ``mode``, ``interval``... overridable in the body)."""
    state = state_of(request)
    controller: RolloutController = request.app.state.controller
    await authorize(state, request, "deployer", model=name)
    endpoint = endpoint_of(state, name)
    payload = json_object(await read_body(request, BODY_LIMIT))
    rollout = await _begin(state, controller, endpoint, payload=payload)
    await controller.start(rollout)
    return json_response(rollout.to_dict(), 201)


async def rollback(request: Request, name: str) -> Response:
    """Admin: all traffic back to the last good version, now."""
    state = state_of(request)
    controller: RolloutController = request.app.state.controller
    await authorize(state, request, "deployer", model=name)
    endpoint = endpoint_of(state, name)
    payload = json_object(await read_body(request, BODY_LIMIT))
    reason = str(payload.get("reason", "rolled back by an operator"))
    rolled = await controller.rollback(endpoint, reason)
    if rolled is None:
        raise Conflict(f"endpoint {name!r} has no rollout to undo and no earlier version")
    return json_response({"endpoint": name, "live": endpoint.live, "rollout": rolled.to_dict()})


ROUTES = [
    Route("POST", "/v1/endpoints/{name}/rollout", start_rollout),
    Route("POST", "/v1/endpoints/{name}/rollback", rollback),
]
