"""The runbook pages, served by the server whose alerts link them: an on-call engineer's
link works wherever the server is reachable, with no docs site to publish first."""

from __future__ import annotations

import re
from importlib import resources

from fastapi import Request
from fastapi.responses import Response

from dnnops.serve.errors import NotFound
from dnnops.serve.http import Route

PAGE = re.compile(r"^[a-z0-9-]{1,64}$")


async def runbook(request: Request, page: str) -> Response:
    """A runbook page, as Markdown (open: it says what to do, never what the data is)."""
    name = page.removesuffix(".md")
    found = resources.files("dnnops") / "runbooks" / f"{name}.md"
    if not PAGE.match(name) or not found.is_file():
        raise NotFound(f"no runbook {page!r}; the index is /runbooks/index")
    return Response(found.read_bytes(), 200, media_type="text/markdown; charset=utf-8")


ROUTES = [Route("GET", "/runbooks/{page}", runbook)]
