"""Labeled traffic for the story: clients send digits to the server and, like a labeling
team would later, the true label of every answer to ``/v1/feedback``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class Replayed:
    requests: int = 0
    instances: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def replay(
    url: str,
    model: str,
    x: np.ndarray,
    *,
    y: np.ndarray,
    instances: int | None = None,
    until: Callable[[], bool] | None = None,
    timeout_s: float = 180.0,
    clients: int = 4,
    rows_per_request: int = 2,
    seed: int = 0,
    labeled: bool = True,
) -> Replayed:
    """Send rows of ``x`` (labels ``y``, unless not ``labeled``: traffic whose labels have
    not arrived yet) until ``instances`` were answered, or ``until()`` holds, or
    ``timeout_s`` passed."""
    done = Replayed()
    rng = np.random.default_rng(seed)
    started = time.perf_counter()

    def finished() -> bool:
        if time.perf_counter() - started > timeout_s:
            return True
        if instances is not None and done.instances >= instances:
            return True
        return until is not None and until()

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def client() -> None:
            while not finished():
                rows = rng.choice(len(y), rows_per_request, replace=False)
                await _one(http, model, x[rows], y=y[rows] if labeled else None, done=done)

        await asyncio.gather(*(client() for _ in range(clients)))
    done.seconds = time.perf_counter() - started
    return done


async def _one(
    http: httpx.AsyncClient,
    model: str,
    x: np.ndarray,
    *,
    y: np.ndarray | None,
    done: Replayed,
) -> None:
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ]
    }
    response = await http.post(
        f"/v2/models/{model}/infer", json=body, headers={"x-routing-key": uuid.uuid4().hex}
    )
    done.requests += 1
    done.statuses[response.status_code] += 1
    if response.status_code != 200:
        return
    ids = response.headers["x-prediction-id"].split(",")
    done.instances += len(ids)
    done.versions[response.headers["x-model-version"]] += len(ids)
    if y is None:
        return
    labels = [
        {"prediction_id": pid, "label": int(label)} for pid, label in zip(ids, y, strict=True)
    ]
    await http.post("/v1/feedback", json={"labels": labels})
