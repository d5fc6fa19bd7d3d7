"""Who is acting, as the server established it: the name of the API key (or shared token)
a request authenticated with, set for the request's task and the threads it hands work to
(``asyncio.to_thread`` copies it). The audit log records it, never an actor the client
declared."""

from __future__ import annotations

from contextvars import ContextVar

ACTOR: ContextVar[str | None] = ContextVar("dnnops_actor", default=None)
