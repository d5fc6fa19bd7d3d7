"""Which predictions are worth a label: labels cost people's time and arrive late, so a
labelling budget goes where it teaches most (active learning's uncertainty sampling), or
where it estimates accuracy without bias (a random sample), or where two versions disagree
(a shadow or a canary against the served answer: one of them is wrong).

The queue lists answered predictions of one endpoint since a moment, never one that
already has a label, each with its inputs as logged, its answer and its confidence; the
file it is written to has an empty ``label`` column: filled in, it goes back through
``dnnops feedback FILE`` like any label.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from dnnops.errors import UsageError
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, read_labels, read_predictions
from dnnops.predlog.records import PredictionRecord

Strategy = Literal["uncertainty", "random", "disagreement"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


@dataclass(frozen=True)
class QueueItem:
    prediction_id: str
    ts: float
    model: str
    version: str
    prediction: Any
    confidence: float | None
    """The top class probability (None for a regressor)."""
    margin: float | None
    """Top minus second probability: the smaller, the nearer the decision boundary."""
    inputs: Any
    why: str
    """Why it was picked, in words."""

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "label": None}


def label_queue(
    logs_dir: Path,
    endpoint: str,
    *,
    budget: int,
    strategy: str,
    since: float,
    seed: int = 0,
) -> list[QueueItem]:
    """Up to ``budget`` unlabelled predictions of ``endpoint`` made since ``since``."""
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if budget < 1:
        raise UsageError("--budget must be at least 1")
    served, mirrored = _unlabelled(logs_dir, endpoint, since)
    if strategy == "random":
        picked = random.Random(seed).sample(served, min(budget, len(served)))
        return [_item(r, "random sample: an unbiased estimate of accuracy") for r in picked]
    if strategy == "uncertainty":
        return _most_uncertain(served, endpoint, budget)
    return _disagreeing(served, mirrored, endpoint=endpoint, budget=budget)


def _unlabelled(
    logs_dir: Path, endpoint: str, since: float
) -> tuple[list[PredictionRecord], dict[str, list[PredictionRecord]]]:
    """The endpoint's answered predictions without a label, and its shadows' answers by
    the prediction id they mirror."""
    labelled = read_labels(logs_dir / FEEDBACK, since=since)
    served: list[PredictionRecord] = []
    mirrored: dict[str, list[PredictionRecord]] = {}
    for record in read_predictions(logs_dir / PREDICTIONS, since=since):
        if record.endpoint != endpoint or not record.answered or record.ts < since:
            continue
        if record.shadow and record.shadow_of:
            mirrored.setdefault(record.shadow_of, []).append(record)
        elif record.id is not None and record.id not in labelled:
            served.append(record)
    return served, mirrored


def _most_uncertain(served: list[PredictionRecord], endpoint: str, budget: int) -> list[QueueItem]:
    scored = [r for r in served if r.probabilities]
    if served and not scored:
        raise UsageError(
            f"{endpoint} answers numbers (no class probabilities): use --strategy random"
        )
    scored.sort(key=lambda r: (_margin(r), r.ts))
    return [
        _item(r, f"margin {_margin(r):.3f}: near the decision boundary") for r in scored[:budget]
    ]


def _disagreeing(
    served: list[PredictionRecord],
    mirrored: dict[str, list[PredictionRecord]],
    *,
    endpoint: str,
    budget: int,
) -> list[QueueItem]:
    if not mirrored:
        raise UsageError(
            f"no shadow of {endpoint} to disagree with since then: start one with "
            "dnnops rollout start NAME@REF --mode shadow, or use --strategy uncertainty"
        )
    found = []
    for record in served:
        others = [m for m in mirrored.get(str(record.id), []) if m.output != record.output]
        if others:
            other = others[0]
            why = f"v{record.version} said {record.output!r}, v{other.version} {other.output!r}"
            found.append((_margin(record), record.ts, _item(record, why)))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [item for _, _, item in found[:budget]]


def _margin(record: PredictionRecord) -> float:
    probabilities = sorted(record.probabilities or [], reverse=True)
    if not probabilities:
        return 1.0
    return probabilities[0] - (probabilities[1] if len(probabilities) > 1 else 0.0)


def _item(record: PredictionRecord, why: str) -> QueueItem:
    confidence = record.confidence
    return QueueItem(
        prediction_id=str(record.id),
        ts=record.ts,
        model=record.model,
        version=record.version,
        prediction=record.output,
        confidence=confidence,
        margin=_margin(record) if record.probabilities else None,
        inputs=record.inputs,
        why=why,
    )


COLUMNS = ("prediction_id", "label", "prediction", "confidence", "margin", "model", "version")
"""The CSV's first columns; then ``ts``, ``why`` and the ``inputs`` as JSON."""


def write_queue(items: list[QueueItem], out: Path) -> None:
    """``.csv`` (fill in ``label``, then ``dnnops feedback FILE``) or ``.jsonl``."""
    if out.suffix not in (".csv", ".jsonl"):
        raise UsageError(f"--out must end in .csv or .jsonl, not {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".jsonl":
        out.write_bytes(b"".join(orjson.dumps(i.to_json()) + b"\n" for i in items))
        return
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, [*COLUMNS, "ts", "why", "inputs"])
        writer.writeheader()
        for item in items:  # an empty label to fill in, the inputs as one JSON cell
            writer.writerow(item.to_json() | {"label": "", "inputs": _json_text(item.inputs)})


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
