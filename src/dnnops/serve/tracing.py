"""OpenTelemetry spans for each request: decode, queue, infer, encode.

Only the OpenTelemetry API is used: without an SDK configured the spans cost almost
nothing; with one (``opentelemetry-instrument dnnops serve ...``) they are exported.
"""

from __future__ import annotations

import time

from opentelemetry import trace

tracer = trace.get_tracer("dnnops.serve")


def tracing_enabled() -> bool:
    """True once an SDK tracer provider is installed (the API's default is a proxy)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def record_span(name: str, start_monotonic: float, end_monotonic: float) -> None:
    """A span for an interval measured with ``time.monotonic`` (inside the batcher)."""
    offset = time.time_ns() - time.monotonic_ns()
    span = tracer.start_span(name, start_time=int(start_monotonic * 1e9) + offset)
    span.end(end_time=int(end_monotonic * 1e9) + offset)
