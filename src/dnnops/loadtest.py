"""``dnnops loadtest``: a closed-loop asyncio load generator for a dnnops (or any OIP v2) server.

N clients each send a request, wait for the answer, and send the next, for a fixed
duration. The report gives requests/s, latency percentiles and errors by status.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from dnnops.errors import UsageError


@dataclass
class LoadReport:
    url: str
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(self.percentile(50), 3),
            "p95_ms": round(self.percentile(95), 3),
            "p99_ms": round(self.percentile(99), 3),
            "errors": {k: v for k, v in sorted(self.statuses.items()) if k != "200"},
        }


async def infer_body(
    client: httpx.AsyncClient, model: str, rows: int = 1, *, seed: int = 0
) -> bytes:
    """A valid v2 request for ``model``, shaped from its metadata (random normal values);
    a table with categories gets one tensor per feature from its example instance."""
    response = await client.get(f"/v2/models/{model}")
    if response.status_code != 200:
        raise UsageError(
            f"cannot read the metadata of model {model!r}: "
            f"HTTP {response.status_code} {response.text}"
        )
    metadata = response.json()
    inputs = metadata["inputs"]
    example = metadata.get("parameters", {}).get("example_instance")
    if len(inputs) != 1 and isinstance(example, dict):
        return orjson.dumps({"inputs": [_column_tensor(i, example, rows) for i in inputs]})
    if len(inputs) != 1 or inputs[0]["datatype"] != "FP32":
        raise UsageError(
            "this model takes several or non-numeric tensors: pass --body FILE with a request"
        )
    shape = [rows, *(d for d in inputs[0]["shape"][1:])]
    data = np.random.default_rng(seed).normal(size=shape).astype("float32")
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": inputs[0]["name"],
                    "shape": shape,
                    "datatype": "FP32",
                    "data": data.ravel(),
                }
            ]
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def _column_tensor(spec: dict[str, Any], example: dict[str, Any], rows: int) -> dict[str, Any]:
    value = example[spec["name"]]
    if spec["datatype"] != "BYTES":
        value = float(value)
    return {
        "name": spec["name"],
        "shape": [rows],
        "datatype": spec["datatype"],
        "data": [value] * rows,
    }


async def run_load(
    url: str,
    model: str,
    concurrency: int = 8,
    *,
    duration_s: float = 10.0,
    body: bytes | None = None,
    on_tick: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """Drive ``model`` at ``url`` with ``concurrency`` closed-loop clients for ``duration_s``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        payload = body or await infer_body(client, model)
        report = LoadReport(url, concurrency, 0.0)
        path = f"/v2/models/{model}/infer"
        started = time.perf_counter()
        stop_at = started + duration_s

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                try:
                    response = await client.post(
                        path, content=payload, headers={"content-type": "application/json"}
                    )
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                report.statuses[status] += 1
                if status == "200":
                    report.latencies_ms.append((time.perf_counter() - sent) * 1000)

        async def ticker() -> None:
            while time.perf_counter() < stop_at:
                await asyncio.sleep(1.0)
                report.seconds = time.perf_counter() - started
                if on_tick is not None:
                    on_tick(report)

        tick = asyncio.ensure_future(ticker())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        tick.cancel()
        report.seconds = time.perf_counter() - started
        return report
