"""What each side of a rollout did in a check window, read from the prediction log."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.data.schema import category_key
from dnnops.predlog.reader import read_labels, read_records
from dnnops.rollout.policy import ArmStats


def arm_stats(
    records: Iterable[Mapping[str, Any]],
    labels: Mapping[str, Any],
    endpoint: str,
    version: str,
    shadow: bool,
) -> ArmStats:
    """Stats of ``version`` on ``endpoint`` from prediction records (already windowed);
    ``shadow`` picks its mirrored records instead of answered ones. ``labels`` maps a
    prediction id to its ground truth."""
    mine = [
        r
        for r in records
        if str(r.get("endpoint")) == endpoint
        and str(r.get("version")) == version
        and bool(r.get("shadow")) == shadow
    ]
    answered = [r for r in mine if r.get("status") == 200]
    latencies = np.array([float(r.get("latency_ms", np.nan)) for r in answered], dtype="float64")
    finite = latencies[np.isfinite(latencies)]
    classes = Counter(category_key(r.get("output")) for r in answered if r.get("probabilities"))
    labeled = correct = 0
    absolute_errors: list[float] = []
    for record in answered:
        truth = labels.get(str(record.get("shadow_of") or record.get("id")))
        if truth is None:
            continue
        if not record.get("probabilities"):  # a regressor's number
            error = _absolute_error(record.get("output"), truth)
            if error is not None:
                absolute_errors.append(error)
            continue
        labeled += 1
        correct += int(category_key(truth) == category_key(record.get("output")))
    return ArmStats(
        version=version,
        requests=len(mine),
        server_errors=sum(1 for r in mine if int(r.get("status", 200)) >= 500),
        latency_p99_ms=float(np.percentile(finite, 99)) if len(finite) else float("nan"),
        class_counts=dict(classes),
        labeled=labeled,
        correct=correct,
        latencies_ms=tuple(finite.tolist()),
        absolute_errors=tuple(absolute_errors),
    )


def _absolute_error(output: Any, label: Any) -> float | None:
    if isinstance(output, bool) or isinstance(label, bool):
        return None
    try:
        error = abs(float(output) - float(label))
    except (TypeError, ValueError):
        return None
    return error if math.isfinite(error) else None


def window_records(logs_dir: Path, start: float, end: float) -> list[dict[str, Any]]:
    return [
        r
        for r in read_records(logs_dir / "predictions", "predictions", since=start)
        if start <= float(r.get("ts", 0.0)) <= end
    ]


def window_labels(logs_dir: Path, start: float) -> dict[str, Any]:
    """Labels that arrived since ``start`` (a label cannot predate its prediction)."""
    return read_labels(logs_dir / "feedback", since=start)


def compare_window(
    logs_dir: Path,
    endpoint: str,
    candidate: str,
    stable: str,
    shadow: bool,
    start: float,
    end: float,
) -> tuple[ArmStats, ArmStats]:
    """Both sides over the same window. When the stable version took no traffic in it
    (blue-green runs the candidate at 100%), the stable side is read from the window of
    the same length just before."""
    records: Sequence[Mapping[str, Any]] = window_records(logs_dir, start, end)
    labels = window_labels(logs_dir, start)
    ours = arm_stats(records, labels, endpoint, candidate, shadow)
    theirs = arm_stats(records, labels, endpoint, stable, False)
    if theirs.requests == 0:
        before = start - (end - start)
        earlier = window_records(logs_dir, before, start)
        theirs = arm_stats(earlier, window_labels(logs_dir, before), endpoint, stable, False)
    return ours, theirs
