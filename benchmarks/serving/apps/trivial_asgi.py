"""The ceiling: a raw ASGI app that reads the body and returns a fixed JSON answer."""

from __future__ import annotations

from typing import Any

ANSWER = b'{"predictions": [7]}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})
