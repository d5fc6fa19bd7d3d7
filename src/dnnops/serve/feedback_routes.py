"""``POST /v1/feedback``: labels for earlier predictions, judged (``serve/feedback.py``),
logged when accepted, counted and audited."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from dnnops.serve.errors import (
    BadRequest,
    Forbidden,
    LogUnwritable,
)
from dnnops.serve.feedback import FeedbackVerdicts, feedback_answer
from dnnops.serve.http import (
    Caller,
    Route,
    authorize_scope,
    json_response,
    read_body,
    state_of,
)
from dnnops.serve.state import ServerState


def _count_feedback(state: ServerState, judged: FeedbackVerdicts) -> None:
    counter = state.metrics.feedback
    relabeled = len(judged.relabeled)
    counter.labels("accepted").inc(len(judged.verdicts.accepted) - relabeled)
    counter.labels("relabeled").inc(relabeled)
    for reason, count in judged.verdicts.refused.items():
        counter.labels(reason).inc(count)


def _audit_relabels(state: ServerState, judged: FeedbackVerdicts) -> None:
    for pid, model, before, after in judged.relabeled:
        state.registry.audit(
            "relabel", model, {"prediction_id": pid, "before": before, "after": after}
        )


def _feedback_labels(body: bytes) -> list[tuple[str, Any]]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    items = payload.get("labels") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest("the body must be {'labels': [{'prediction_id': ..., 'label': ...}, ...]}")
    out = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("prediction_id"), str)
            or "label" not in item
        ):
            raise BadRequest(f"labels[{index}] needs a string 'prediction_id' and a 'label'")
        label = item["label"]
        if isinstance(label, bool) or not isinstance(label, int | float | str):
            raise BadRequest(f"labels[{index}].label must be a class id or name, or a number")
        if isinstance(label, float) and not math.isfinite(label):
            raise BadRequest(f"labels[{index}].label must be a finite number")
        out.append((item["prediction_id"], item["label"]))
    return out


async def feedback(request: Request) -> Response:
    """Labels for earlier predictions, by prediction id (labels scope); each label's status
    is answered, and only accepted ones are logged."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "labels")
    labels = _feedback_labels(await read_body(request, state.serve.max_body_bytes))
    if caller is not None:
        await asyncio.to_thread(labels_within, state, caller, [pid for pid, _ in labels])
    judged = await asyncio.to_thread(state.label_gate().judge, labels)
    accepted = judged.verdicts.accepted
    if accepted:  # logged before the answer says so
        try:
            await state.logger.feedback.append_async(state.logger.feedback_records(accepted))
        except OSError as exc:
            raise LogUnwritable("feedback", exc) from None
    _count_feedback(state, judged)
    if judged.relabeled:
        await asyncio.to_thread(_audit_relabels, state, judged)
    return json_response(feedback_answer(labels, judged))


def labels_within(state: ServerState, caller: Caller, ids: list[str]) -> None:
    """A labeler limited to some models labels their predictions only: the request is
    refused (403, naming the first) if any id was answered by another model."""
    made_by = state.label_gate().made_by(ids)
    for index, pid in enumerate(ids):
        model = made_by.get(pid, (None, None))[0]
        if model is not None and not caller.allows("labeler", model):
            raise Forbidden(
                f"{caller.name!r} ({caller.described}) may not label predictions of "
                f"{model}: labels[{index}] ({pid})"
            )


ROUTES = [Route("POST", "/v1/feedback", feedback)]
