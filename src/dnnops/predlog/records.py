"""The kinds of record the logs hold, encoded and decoded here and nowhere else.

A prediction record is what the server (or ``dnnops predict``) wrote about one instance,
or about one refused request; a feedback record is one label for one prediction id. Every
consumer (the digest, the report, the dashboard, the rollout gates, retraining, the CLI)
reads these types, so a key is spelled once: a misspelling is a type error, not a silent
``None``. Decoding (orjson, then msgspec's checked conversion: 2 us a record) is lenient where
logs from older versions differ (a missing field takes its default, an unknown one is
ignored) and strict where a value could be misread (a record whose time or status is not
a number is counted as damaged, never guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import msgspec
import orjson

from dnnops.vocabulary import Role

_DUMP = orjson.OPT_SERIALIZE_NUMPY


class UnreadableRecord(ValueError):
    """A whole frame whose JSON is not a record of this kind (counted as damage)."""


@dataclass(slots=True)
class RequestContext:
    """What the server learns about a request while answering it, copied into each of its
    records: where it went, and what it cost."""

    endpoint: str
    protocol: str = ""
    model: str = ""
    version: str = ""
    shadow: bool = False
    latency_ms: float | None = None
    model_ms: float | None = None
    """The model's share: its batches, without queueing or HTTP."""
    cpu_ms: float | None = None
    """Model CPU per instance: the cost of a prediction."""
    replica: str = ""
    """The fleet replica that answered (empty outside a fleet)."""

    @property
    def names(self) -> tuple[str, str, str]:
        """(endpoint, model, version): the labels of the request's metric series."""
        return self.endpoint, self.model, self.version


class LogRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """What both kinds of record share: JSON in, JSON out, types checked on the way in."""

    def to_json(self) -> dict[str, Any]:
        """The record as the log holds it: fields at their default are left out."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def encode(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """One frame's payload as a record, its types checked (msgspec)."""
        try:
            data = orjson.loads(payload)  # orjson reads floats twice as fast as msgspec
        except orjson.JSONDecodeError as exc:
            raise UnreadableRecord(f"not JSON: {exc}") from exc
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """A record from JSON already parsed (an object)."""
        try:
            return msgspec.convert(data, cls)
        except msgspec.ValidationError as exc:
            raise UnreadableRecord(f"not a {cls.__name__}: {exc}") from exc


class PredictionRecord(LogRecord, frozen=True):
    """One answered instance, or one refused request (``logs/predictions/``)."""

    ts: float
    """When the request arrived (Unix seconds)."""
    status: int
    """200 for an answered instance; the HTTP status a refused request got otherwise."""
    endpoint: str = ""
    """The endpoint the request was sent to."""
    model: str = ""
    """The model of the version that answered."""
    version: str = ""
    """The version that answered (the canary's during a rollout)."""
    protocol: str = ""
    """``v2``, ``v1`` or ``batch``."""
    id: str | None = None
    """None for a refused request: nothing was predicted, so nothing can be labelled."""
    shadow: bool = False
    """A shadow's copy: its answer was recorded, never sent to the client."""
    shadow_of: str | None = None
    """A shadow's record names the answered prediction it mirrors: its label scores both."""
    inputs: Any = None
    """The instance as it arrived (a row of numbers in schema order, an object keyed by
    feature, or a tensor as nested lists); None when sampling left it out."""
    output: Any = None
    """The answer: a class label as in training, or a regressor's number."""
    probabilities: list[float] | None = None
    """A classifier's class probabilities; None for a regressor."""
    latency_ms: float | None = None
    """Time inside the server, from the request's arrival to its answer."""
    model_ms: float | None = None
    """Model-only time: from the first batch's start to the last batch's end."""
    cpu_ms: float | None = None
    """The instance's share of its batches' model time x the runner's threads."""
    error: str | None = None
    """Why a refused request was refused (the answer's error message)."""
    reason: str | None = None
    """A failure's cause as a code monitoring counts (``invalid_output``: the model
    answered NaN or infinity); None for the others."""
    part: int = 0
    """The instance's place in its request (0: the first, and every request of one
    instance): a latency objective counts each request once, by its first instance, as
    the server's request-duration histogram does."""
    replica: str = ""
    """The fleet replica that answered: empty outside a fleet."""
    tier: int | None = None
    """A tiered version's tier that answered (0: the first); None for one model."""
    descriptors: dict[str, float] | None = None
    """An image's or a text's monitored numbers (``image.brightness``, ``ticket.length``,
    ...): kept even when sampling leaves the input out."""
    embedding: list[float] | None = None
    """An image or text model's view of the input: its penultimate layer projected to a
    few principal directions (``embeddings.json`` of the version), for embedding drift."""

    @property
    def answered(self) -> bool:
        return self.status == 200

    @property
    def label_id(self) -> str:
        """The prediction id a label for this record is sent under."""
        return str(self.shadow_of or self.id)

    @property
    def role(self) -> Role:
        return "shadow" if self.shadow else "served"

    @property
    def confidence(self) -> float | None:
        return max(self.probabilities) if self.probabilities else None


class FeedbackRecord(LogRecord, frozen=True):
    """One label for an earlier prediction (``logs/feedback/``)."""

    prediction_id: str
    """The id the prediction was answered with."""
    label: Any
    """The ground truth: a class label as in training, or a number."""
    ts: float
    """When the label arrived."""


class ExplanationRecord(LogRecord, frozen=True):
    """One live prediction explained in the background (``logs/explanations/``)."""

    prediction_id: str
    """The explained prediction's id."""
    ts: float
    """When it was explained."""
    prediction_ts: float
    """When the prediction was made."""
    endpoint: str
    """The endpoint that answered it."""
    model: str
    """The model of the version that answered it."""
    version: str
    """The version that answered it."""
    method: str
    """``integrated_gradients`` or ``occlusion``."""
    target: Any
    """The output explained: the predicted class, or 0 for a regressor's value."""
    attributions: dict[str, float]
    """By feature (a table), or by flat input element index (a tensor)."""


_ENCODER = msgspec.json.Encoder()


def prediction_records(
    ids: list[str],
    context: RequestContext,
    *,
    ts: float,
    inputs: list[Any],
    outputs: list[Any],
    probabilities: Any | None,
    tiers: list[int] | None = None,
    shadow_of: list[str] | None = None,
    descriptors: list[dict[str, float]] | None = None,
    embeddings: list[list[float]] | None = None,
) -> list[bytes]:
    """The encoded records of one answered request, one per instance (the server's hot
    path: the shared part of every record is built once)."""
    shared = _shared_fields(context, ts)
    out = []
    for index, prediction_id in enumerate(ids):
        record = {"id": prediction_id, **shared, "inputs": inputs[index], "output": outputs[index]}
        if index:
            record["part"] = index
        if probabilities is not None:
            record["probabilities"] = probabilities[index]
        if shadow_of is not None:
            record["shadow_of"] = shadow_of[index]
        if tiers is not None:
            record["tier"] = tiers[index]
        if descriptors is not None:
            record["descriptors"] = descriptors[index]
        if embeddings is not None:
            record["embedding"] = embeddings[index]
        out.append(orjson.dumps(record, option=_DUMP))
    return out


def _shared_fields(context: RequestContext, ts: float) -> dict[str, Any]:
    """The fields every record of one request shares. Spelled out, not a loop of
    ``getattr`` over names: this runs once per request on the event loop, where that loop
    cost ~1 us of the ~100 us a small request takes. An answered request always names its
    endpoint, protocol, model and version."""
    c = context
    shared: dict[str, Any] = {
        "ts": ts,
        "endpoint": c.endpoint,
        "protocol": c.protocol,
        "model": c.model,
        "version": c.version,
    }
    if c.shadow:
        shared["shadow"] = True
    if c.replica:
        shared["replica"] = c.replica
    for name, value in (
        ("latency_ms", c.latency_ms),
        ("model_ms", c.model_ms),
        ("cpu_ms", c.cpu_ms),
    ):
        if value is not None:
            shared[name] = value
    shared["status"] = 200
    return shared


def failure_record(
    context: RequestContext, *, ts: float, status: int, error: str, reason: str | None = None
) -> bytes:
    """The one record of a request refused or failed before anything was predicted."""
    return PredictionRecord(
        ts=ts,
        status=status,
        endpoint=context.endpoint,
        model=context.model,
        version=context.version,
        protocol=context.protocol,
        shadow=context.shadow,
        latency_ms=context.latency_ms,
        error=error,
        reason=reason,
        replica=context.replica,
    ).encode()
