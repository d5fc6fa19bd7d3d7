"""Limits on how a client sends a request: the size of its headers and how long its
headers and body may take to arrive. uvicorn bounds neither, so one client trickling a
byte every few seconds, or sending megabytes of headers, holds a connection and memory for
as long as it likes. These checks sit in the HTTP protocol, before the application."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True)
class ReadLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float


def guarded_protocol(limits: ReadLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, refusing requests past ``limits`` (``http=`` of
    ``uvicorn.Config``, which instantiates it per connection)."""

    class Guarded(_Guarded):
        read_limits = limits

    return Guarded


class _Refused(Exception):
    """Stops the parser after a refusal was answered."""


class _Guarded(HttpToolsProtocol):
    read_limits: ReadLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the answer is sent and the connection closing: read nothing more
        if self._timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.read_limits.header_timeout_s, "headers")  # a request begins
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a parser error of our own making was answered already
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._arm(self.read_limits.body_timeout_s, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        limit = self.read_limits.max_header_bytes
        if self._header_bytes > limit:
            self._refuse(431, "headers", f"the request line and headers exceed {limit} bytes")
            raise _Refused

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, seconds, part)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, seconds: float, part: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # an answer is under way: it cannot become a 408
            return
        self._refuse(408, part, f"the request's {part} did not arrive within {seconds:g} s")

    def _refuse(self, status: int, field: str, message: str) -> None:
        """A JSON error as every dnnops refusal, then the connection closed."""
        self._refused = True
        self._disarm()
        if self.cycle is not None:
            self.cycle.keep_alive = False
            self.cycle.disconnected = True  # the application's answer, if any, is dropped
            self.cycle.message_event.set()
        body = json.dumps({"error": message, "field": field}).encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n"
            % (status, REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()
