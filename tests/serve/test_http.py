"""The raw request of the inference path, under a real uvicorn on 127.0.0.1: the body,
headers, and the free disconnect check the batcher relies on."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from dnnops.serve.errors import PayloadTooLarge
from dnnops.serve.http import Answer, RawRequest


class Probe:
    """An ASGI app that reads the body, then waits for its client to hang up."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        self.hung_up = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = RawRequest(scope, receive)
        try:
            self.seen["body"] = await request.body(limit=1024)
        except PayloadTooLarge as exc:
            await Answer(exc.status, exc.message.encode()).send(send)
            return
        self.seen["header"] = request.header("x-routing-key")
        gone = request.client_gone()
        self.seen["checkable"] = gone is not None
        if scope["path"] == "/answer":
            await Answer(200, b'{"ok": true}', {"x-answer": "1"}).send(send)
            return
        for _ in range(200):
            if gone is not None and gone():
                self.hung_up.set()
                return
            await asyncio.sleep(0.01)


@pytest.fixture
def probe_server() -> Iterator[tuple[Probe, int]]:
    probe = Probe()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(probe, log_level="warning", loop="uvloop", http="httptools")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield probe, sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _post(port: int, path: str, body: bytes, close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Routing-Key: abc\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        if close:
            time.sleep(0.1)
            return b""
        reply = conn.recv(65536)  # the head and the body may come in two segments
        head, _, body = reply.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head.lower())
        while length is not None and len(body) < int(length[1]):
            more = conn.recv(65536)
            if not more:
                break
            body += more
        return head + b"\r\n\r\n" + body if body or length else reply


def test_body_headers_and_answer(probe_server: tuple[Probe, int]) -> None:
    probe, port = probe_server
    reply = _post(port, "/answer", b'{"instances": [[1, 2]]}')
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"content-type: application/json" in reply.lower()
    assert b"x-answer: 1" in reply.lower()
    assert reply.endswith(b'{"ok": true}')
    assert probe.seen == {"body": b'{"instances": [[1, 2]]}', "header": "abc", "checkable": True}


def test_a_body_over_the_limit_is_refused(probe_server: tuple[Probe, int]) -> None:
    _, port = probe_server
    assert _post(port, "/answer", b"x" * 2048).startswith(b"HTTP/1.1 413")


def test_a_client_that_hangs_up_is_seen_without_reading_the_connection(
    probe_server: tuple[Probe, int],
) -> None:
    probe, port = probe_server
    _post(port, "/wait", b"{}", close=True)
    assert probe.hung_up.wait(5), "uvicorn's disconnected flag never turned true"
