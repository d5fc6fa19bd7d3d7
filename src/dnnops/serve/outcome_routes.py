"""``POST /v1/outcomes``: business outcomes (a purchase, a refund, a chargeback amount)
for earlier predictions, by prediction id. Each is logged under its KPI
(``logs/outcomes/<kpi>/``) and joined with its prediction as a label is, so the report,
the ``kpi`` objectives and the canary's KPI gates read it per version. An outcome for a
prediction this server never made is refused and counted; a name that is not one of
``monitor.kpis`` refuses the request (a typo would otherwise vanish)."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from dnnops.serve.errors import BadRequest, LogUnwritable, Unprocessable
from dnnops.serve.feedback_routes import labels_within
from dnnops.serve.http import Route, authorize_scope, json_response, read_body, state_of
from dnnops.serve.state import ServerState

Outcome = tuple[str, str, float]
"""(prediction id, KPI, value)."""


def parse_outcomes(body: bytes, kpis: list[str]) -> list[Outcome]:
    """The body's outcomes, each checked; the first bad one refuses the request, named."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    items = payload.get("outcomes") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest(
            "the body must be {'outcomes': [{'prediction_id': ..., 'name': ..., 'value': ...}]}"
        )
    out = []
    for index, item in enumerate(items):
        where = f"outcomes[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str):
            raise BadRequest(f"{where} needs a string 'prediction_id', a 'name' and a 'value'")
        name, value = item.get("name"), item.get("value")
        if name not in kpis:
            known = ", ".join(kpis) or "none: declare them in monitor.kpis"
            raise Unprocessable(f"{where}.name: {name!r} is not a KPI of this server ({known})")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise Unprocessable(f"{where}.value: {value!r} is not a finite number")
        out.append((item["prediction_id"], str(name), float(value)))
    return out


async def outcomes(request: Request) -> Response:
    """Outcomes for earlier predictions (labels scope); each one's status is answered, and
    only accepted ones are logged."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "labels")
    kpis = [kpi.name for kpi in state.policies.monitor.kpis]
    sent = parse_outcomes(await read_body(request, state.serve.max_body_bytes), kpis)
    if caller is not None:
        await asyncio.to_thread(labels_within, state, caller, [pid for pid, _, _ in sent])
    made_by = await asyncio.to_thread(state.label_gate().made_by, [pid for pid, _, _ in sent])
    accepted: dict[str, list[Outcome]] = defaultdict(list)
    statuses = []
    for pid, name, value in sent:
        known = pid in made_by
        if known:
            accepted[name].append((pid, name, value))
        statuses.append(
            {
                "prediction_id": pid,
                "name": name,
                "status": "accepted" if known else "unknown_prediction_id",
            }
        )
    await _log(state, accepted)
    refused = len(sent) - sum(len(items) for items in accepted.values())
    for name in kpis:
        taken = len(accepted.get(name, []))
        state.metrics.outcomes.labels(name, "accepted").inc(taken)
    for item in statuses:
        if item["status"] != "accepted":
            state.metrics.outcomes.labels(item["name"], item["status"]).inc()
    answer: dict[str, Any] = {
        "accepted": len(sent) - refused,
        "refused": {"unknown_prediction_id": refused} if refused else {},
        "errors": bool(refused),
        "items": statuses,
    }
    return json_response(answer)


async def _log(state: ServerState, accepted: dict[str, list[Outcome]]) -> None:
    """Each KPI's accepted outcomes to its log (as feedback records), before the answer
    says so."""
    for name, items in accepted.items():
        records = state.logger.feedback_records([(pid, value) for pid, _, value in items])
        try:
            await state.logger.outcome_writer(name).append_async(records)
        except OSError as exc:
            raise LogUnwritable("outcome", exc) from None


ROUTES = [Route("POST", "/v1/outcomes", outcomes)]
