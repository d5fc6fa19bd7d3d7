"""A client may not hold a connection or memory as long as it likes: headers larger than
``serve.max_header_bytes`` get 431, headers or a body that do not arrive within
``serve.header_timeout`` / ``serve.body_timeout`` get 408, each as JSON naming the part,
and the connection is closed. Requests within the limits are served as before."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.serve.conftest import Server, start_server


@pytest.fixture(scope="module")
def strict(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = tmp_path_factory.mktemp("limits") / "dnnops.yaml"
    config.write_text(
        "name: digits\ndata: {source: 'builtin:digits'}\n"
        "serve: {max_header_bytes: 4096, header_timeout: 1s, body_timeout: 1s}\n"
    )
    running = start_server(trained_home, "-c", str(config))
    yield running
    running.stop()


def connect(server: Server) -> socket.socket:
    address = urlparse(server.url)
    sock = socket.create_connection((address.hostname or "", address.port or 80), timeout=10)
    return sock


def answer_of(sock: socket.socket) -> tuple[int, dict[str, str], float]:
    """Status and JSON body of the one answer on ``sock``, read until the server closes it,
    and the seconds that took."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), time.monotonic() - started


def test_headers_over_the_limit_are_refused_with_431(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8000)
        sock.sendall(b"\r\n\r\n")
        status, body, _ = answer_of(sock)
    assert status == 431 and body["field"] == "headers" and "4096" in body["error"]


def test_headers_that_trickle_past_the_timeout_get_408_and_a_closed_connection(
    strict: Server,
) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n")
        status, body, took = answer_of(sock)  # the last CRLF never comes
    assert status == 408 and body["field"] == "headers", body
    assert 0.8 < took < 5, took


def test_a_body_that_stops_short_gets_408(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(
            b"POST /v1/models/digits:predict HTTP/1.1\r\nhost: x\r\n"
            b"content-type: application/json\r\ncontent-length: 500\r\n\r\n"
            b'{"instances": [['
        )
        status, body, took = answer_of(sock)
    assert status == 408 and body["field"] == "body", body
    assert 0.8 < took < 5, took


def test_requests_within_the_limits_are_served_on_a_kept_alive_connection(
    strict: Server,
) -> None:
    with httpx.Client(base_url=strict.url, timeout=30) as http:
        for _ in range(3):
            reply = http.post("/v1/models/digits:predict", json={"instances": [[0.0] * 64]})
            assert reply.status_code == 200, reply.text
            time.sleep(0.6)  # idle between requests is not a slow request
        assert http.get("/v2/health/ready").status_code == 200
