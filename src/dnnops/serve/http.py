"""HTTP plumbing every route shares: JSON answers, bounded bodies, admin authorization."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from dnnops.durations import parse_duration
from dnnops.errors import DnnopsError
from dnnops.registry.actor import ACTOR
from dnnops.registry.api_keys import PREFIX as KEY_PREFIX
from dnnops.registry.api_keys import ApiKey, Role
from dnnops.serve.errors import (
    BadRequest,
    Forbidden,
    HttpError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    http_error_of,
)
from dnnops.serve.oidc import OidcIdentity, TokenRefused
from dnnops.serve.runtime import Endpoint
from dnnops.serve.state import ServerState

JSON = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return json_answer(payload, status, headers).response()


def error_response(error: HttpError) -> Response:
    return error_answer(error).response()


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a FastAPI route's request, bounded as the inference path bounds it."""
    return await RawRequest(request.scope, request.receive).body(limit)


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer: sent as two raw ASGI messages on the inference path (Starlette's
    Response costs more than the rest of the send), or as a Response on FastAPI routes."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = JSON

    def response(self) -> Response:
        return Response(self.body, self.status, self.headers, self.media_type)

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *((k.encode(), v.encode()) for k, v in self.headers.items()),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    return Answer(status, body, headers or {})


def error_answer(error: HttpError) -> Answer:
    return json_answer({"error": error.message}, error.status, error.headers)


class InferenceRequest(Protocol):
    """What the inference path reads of a request, whichever front end received it (an
    ASGI request, a gRPC call)."""

    def header(self, name: str) -> str | None: ...

    async def body(self, limit: int) -> bytes: ...

    def client_gone(self) -> Callable[[], bool] | None: ...

    @property
    def receive(self) -> Receive: ...


class RawRequest:
    """The parts of an ASGI request an inference handler reads: headers and the body."""

    __slots__ = ("_headers", "receive", "scope")

    def __init__(self, scope: Message, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self._headers: dict[str, str] | None = None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower case), or None."""
        if self._headers is None:
            pairs = self.scope["headers"]
            self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in pairs}
        return self._headers.get(name)

    async def body(self, limit: int) -> bytes:
        declared = self.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(
                f"the body has {declared} bytes; the limit is {limit} (serve.max_body_bytes)"
            )
        chunks, size, more = [], 0, True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("the client disconnected while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body exceeds {limit} bytes (serve.max_body_bytes)")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def client_gone(self) -> Callable[[], bool] | None:
        """A free check of whether the client hung up, where the server offers one
        (uvicorn's request cycle keeps a ``disconnected`` flag); None elsewhere."""
        cycle = getattr(self.receive, "__self__", None)
        if cycle is None or not isinstance(getattr(cycle, "disconnected", None), bool):
            return None
        return lambda: bool(cycle.disconnected)


def json_object(body: bytes) -> dict[str, Any]:
    """An optional JSON object body (empty means ``{}``)."""
    try:
        payload = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the request body must be a JSON object")
    return payload


Scope = Literal["labels", "read"]
_SCOPE_ENV = {"labels": "DNNOPS_LABELS_TOKEN", "read": "DNNOPS_READ_TOKEN"}
SCOPE_ROLE: dict[str, Role] = {"labels": "labeler", "read": "reader"}


Caller = ApiKey | OidcIdentity
"""Who a key or a token named; a shared token names no one (it may do all its scope may)."""


async def authorize_scope(
    state: ServerState, request: Request, scope: Scope, *, model: str | None = None
) -> Caller | None:
    """``labels`` (feedback, outcomes) and ``read`` (tracer, dashboard data, monitor) routes:
    open while no token, key or identity provider is set (a loopback server for one user),
    else they need their scope's token, the admin token, a key whose role covers them (a
    ``labeler`` for labels, a ``reader`` for reads) or an OIDC token with such a role, on
    ``model`` when the grant is limited to one. The caller is returned, for routes that
    learn the model only from the body."""
    keys = await state.key_auth().any()
    if not state.access.secured and not keys and state.oidc() is None:
        return None
    own = state.access.labels if scope == "labels" else state.access.read
    token = _bearer(
        request, f"{scope} route: send Authorization: Bearer <{_SCOPE_ENV[scope]}> or a key"
    )
    for name, shared in (("admin token", state.access.admin), (f"{scope} token", own)):
        if shared and _matches(token, shared):
            ACTOR.set(name)
            return None
    return await _by_identity(state, token, SCOPE_ROLE[scope], model=model, what=f"{scope} routes")


async def authorize(
    state: ServerState, request: Request, role: Role = "admin", *, model: str | None = None
) -> Caller | None:
    """Admin routes (and ``deployer`` ones: rollouts): the admin token, or a key or OIDC
    token whose role covers ``role``; 401 without a bearer token (or with an invalid JWT),
    403 with a wrong one, refused while neither the admin token nor any key nor an
    identity provider is set. The caller is returned (None for the admin token), for
    routes that learn the model only from the body (``require_grant``)."""
    token = _bearer(
        request, "admin route: send Authorization: Bearer <DNNOPS_ADMIN_TOKEN> or a key"
    )
    if state.access.admin is not None and _matches(token, state.access.admin):
        ACTOR.set("admin token")
        return None
    configured = state.oidc() is not None or await state.key_auth().any()
    if state.access.admin is None and not configured:
        raise Forbidden(
            "admin routes are disabled: start the server with DNNOPS_ADMIN_TOKEN set, or "
            "issue a key (dnnops keys create NAME --role admin)"
        )
    return await _by_identity(state, token, role, model=model, what=f"{role} routes")


def _bearer(request: Request, missing: str) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized(missing)
    return header.removeprefix("Bearer ")


async def _by_identity(
    state: ServerState, token: str, needed: Role, *, model: str | None, what: str
) -> Caller:
    """The key or OIDC token's caller, when its grants cover ``needed`` on ``model``."""
    verifier = state.oidc()
    caller: Caller
    if verifier is not None and not token.startswith(KEY_PREFIX) and token.count(".") == 2:
        try:
            caller = await verifier.identify(token)
        except TokenRefused as exc:
            raise Unauthorized(f"bearer token refused: {exc}") from None
        actor = f"oidc:{caller.name}"
    else:
        key = await state.key_auth().identify(token)
        if key is None:
            raise Forbidden(f"this token may not use {what} (unknown, revoked or expired key)")
        caller, actor = key, f"key:{key.name}"
    require_grant(caller, needed, model, what=what)
    ACTOR.set(actor)
    return caller


def require_grant(caller: Caller | None, needed: Role, model: str | None, *, what: str) -> None:
    """403 unless ``caller``'s grants cover ``needed`` on ``model`` (a shared token, None,
    may do all its scope may): for a model a route learns after authorizing the caller."""
    if caller is not None and not caller.allows(needed, model):
        raise Forbidden(
            f"{caller.name!r} ({caller.described}) may not use {what}"
            + (f" of {model}" if model else "")
            + f": that needs the {needed} role"
        )


def _matches(token: str, shared: str) -> bool:
    return hmac.compare_digest(token.encode(), shared.encode())


def v1_instances(body: bytes) -> Any:
    """The ``instances`` of a KServe V1 body (``:predict``, ``:explain``)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise BadRequest("the body must be an object with 'instances': a list of instances")
    return payload["instances"]


def install_error_path(app: FastAPI) -> None:
    """One mapping from exceptions to answers for every FastAPI route: an ``HttpError``
    answers its own status, a library error (``DnnopsError``) the status its class declares
    (``http_error_of``). Routes raise; none catches to answer. (The inference fast path
    records each failure in the log, so it answers its own.)"""

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        return error_response(exc)

    async def library_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, DnnopsError)
        return error_response(http_error_of(exc))

    app.add_exception_handler(HttpError, http_error)
    app.add_exception_handler(DnnopsError, library_error)


def endpoint_of(state: ServerState, name: str) -> Endpoint:
    """The endpoint ``name`` serves, or 404 naming the ones this server has."""
    found = state.endpoints.get(name)
    if found is None:
        raise NotFound(f"unknown endpoint {name!r}; this server serves {sorted(state.endpoints)}")
    return found


LONGEST_WINDOW_S = 400 * 86400.0
"""A window longer than this is a mistake, not a question (and overflows time)."""


def window_of(since: str) -> float:
    """A route's ``since`` in seconds (``1h``, ``30m``), or 400 naming it."""
    try:
        seconds = parse_duration(since)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"since: {exc}") from None
    if not 0 < seconds <= LONGEST_WINDOW_S:
        raise BadRequest(f"since: {since!r} is not within 1s..400d")
    return seconds


@dataclass(frozen=True)
class Route:
    """One route as data (as Starlette's ``Route``): each route module lists its own in a
    ``ROUTES`` table, and ``create_app`` adds every table. A handler finds what the server
    holds through ``state_of(request)``."""

    method: str
    path: str
    endpoint: Callable[..., Awaitable[Response]]


def add_routes(app: FastAPI, routes: list[Route]) -> None:
    for route in routes:
        app.add_api_route(route.path, route.endpoint, methods=[route.method])


def state_of(request: Request) -> ServerState:
    """The ``ServerState`` of the app that received ``request``."""
    state: ServerState = request.app.state.dnnops
    return state
