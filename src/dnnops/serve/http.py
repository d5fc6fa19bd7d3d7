"""HTTP plumbing every route shares: JSON answers, bounded bodies, admin authorization."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from dnnops.serve.errors import BadRequest, Forbidden, HttpError, PayloadTooLarge, Unauthorized
from dnnops.serve.state import ServerState

JSON = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status, headers, JSON)


def error_response(error: HttpError) -> Response:
    return json_response({"error": error.message}, error.status, error.headers)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the body has {declared} bytes; the limit is {limit} (serve.max_body_bytes)"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes (serve.max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(body: bytes) -> dict[str, Any]:
    """An optional JSON object body (empty means ``{}``)."""
    try:
        payload = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    return payload


def authorize(state: ServerState, request: Request) -> None:
    """Admin routes: 401 without a bearer token, 403 with a wrong one, refused when unset."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("admin route: send Authorization: Bearer <DNNOPS_ADMIN_TOKEN>")
    if state.admin_token is None:
        raise Forbidden("admin routes are disabled: start the server with DNNOPS_ADMIN_TOKEN set")
    if not hmac.compare_digest(header.removeprefix("Bearer ").encode(), state.admin_token.encode()):
        raise Forbidden("wrong admin token")
