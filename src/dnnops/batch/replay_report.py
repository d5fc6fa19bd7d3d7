"""What a replay found, computed from the answers of both versions on the same logged
inputs: agreement, quality on the labels that arrived, the KPIs the champion's answers
earned, latency, per-segment differences and the drift of the candidate's answers. The
verdict is the canary's own gates (``rollout.policy.evaluate_gates``) on those numbers, so
a candidate the canary would roll back for its quality or its answers is refused before
it takes traffic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dnnops.config import KpiConfig, RolloutConfig
from dnnops.data.schema import category_key
from dnnops.monitor.judgements.kpis import kpi_of
from dnnops.monitor.stats.drift import jensen_shannon_distance
from dnnops.rollout.policy import ArmStats, GateResult, evaluate_gates

OUTPUT_DRIFT_THRESHOLD = 0.1
"""Jensen-Shannon distance between the two versions' answered classes called a drift."""


@dataclass(frozen=True)
class Side:
    """One version's offline answers to the replayed rows."""

    version: int
    answers: np.ndarray
    """(N,) the answered classes (object) or values (float)."""
    ms_per_row: list[float]
    """Each chunk's prediction time per row: offline latency, measured the same way for both."""
    invalid: int = 0
    """Rows it answered with NaN or infinity."""


@dataclass(frozen=True)
class ReplayInputs:
    """The logged rows replayed, and what arrived for them since."""

    ids: list[str]
    logged_answers: list[Any]
    """What the champion answered when it served them (from the log)."""
    labels: dict[str, Any]
    outcomes: dict[str, dict[str, Any]]
    """Per KPI, its outcomes by prediction id."""
    groups: list[Any] | None = None
    """Each row's ``data.group`` value, when the project names one."""


@dataclass(frozen=True)
class Segment:
    segment: str
    rows: int
    agreement: float
    candidate_accuracy: float | None
    champion_accuracy: float | None
    labels: int


@dataclass
class ReplayReport:
    model: str
    candidate: int
    champion: int
    window_start: float
    window_end: float
    rows: int
    skipped: dict[str, int]
    redacted: list[str]
    """Features the log keeps hashed or not at all: replayed as missing (imputed)."""
    matches_log: float | None
    """Share of rows where the champion, replayed offline, answers what it answered live."""
    agreement: float | None
    """Share of rows both answer alike (a regressor: within 1% of the champion's value)."""
    mean_abs_difference: float | None
    quality: dict[str, dict[str, float | int | None]]
    kpis: list[dict[str, Any]]
    latency: dict[str, float | None]
    segments: list[Segment]
    output_drift: dict[str, Any] | None
    gates: list[dict[str, Any]]
    passed: bool
    message: str = ""
    task: str = "classification"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    candidate: Side,
    champion: Side,
    inputs: ReplayInputs,
    *,
    regression: bool,
    policy: RolloutConfig,
    kpis: Sequence[KpiConfig],
) -> tuple[dict[str, Any], list[GateResult]]:
    """The report's numbers (``ReplayReport`` fields) and the gates' verdicts."""
    ours = _arm(candidate, inputs, regression=regression, kpis=kpis, agree_with=champion)
    theirs = _arm(champion, inputs, regression=regression, kpis=kpis, agree_with=None)
    gates = evaluate_gates(ours, theirs, policy, kpis=())  # KPIs: see kpi_proxy
    numbers: dict[str, Any] = {
        "matches_log": _match_share(champion.answers, inputs.logged_answers, regression),
        "agreement": _match_share(candidate.answers, list(champion.answers), regression),
        "mean_abs_difference": (
            float(np.mean(np.abs(candidate.answers.astype(float) - champion.answers.astype(float))))
            if regression and len(candidate.answers)
            else None
        ),
        "quality": {
            "candidate": _quality(ours, regression),
            "champion": _quality(theirs, regression),
        },
        "kpis": [kpi_proxy(k, (candidate, champion), inputs, regression=regression) for k in kpis],
        "latency": _latency(candidate, champion),
        "segments": _segments((candidate, champion), inputs, regression=regression),
        "output_drift": None if regression else _output_drift(candidate, champion),
    }
    return numbers, gates


def _arm(
    side: Side,
    inputs: ReplayInputs,
    *,
    regression: bool,
    kpis: Sequence[KpiConfig],
    agree_with: Side | None,
) -> ArmStats:
    labeled = correct = 0
    errors: list[float] = []
    for pid, answer in zip(inputs.ids, side.answers.tolist(), strict=True):
        if pid not in inputs.labels:
            continue
        label = inputs.labels[pid]
        if regression:
            if isinstance(label, int | float):
                errors.append(abs(float(answer) - float(label)))
        else:
            labeled += 1
            correct += category_key(answer) == category_key(label)
    latencies = tuple(side.ms_per_row)
    return ArmStats(
        version=str(side.version),
        requests=len(side.answers) + side.invalid,
        server_errors=side.invalid,
        latency_p99_ms=float(np.percentile(latencies, 99)) if latencies else float("nan"),
        class_counts={} if regression else dict(Counter(map(category_key, side.answers.tolist()))),
        labeled=labeled,
        correct=correct,
        latencies_ms=latencies,
        absolute_errors=tuple(errors),
    )


def _match_share(ours: np.ndarray, theirs: Sequence[Any], regression: bool) -> float | None:
    if not len(ours):
        return None
    if regression:
        a, b = ours.astype(float), np.array(theirs, dtype=float)
        return float(np.mean(np.abs(a - b) <= 0.01 * np.maximum(np.abs(b), 1e-9)))
    return float(
        np.mean(
            [category_key(x) == category_key(y) for x, y in zip(ours.tolist(), theirs, strict=True)]
        )
    )


def _quality(arm: ArmStats, regression: bool) -> dict[str, float | int | None]:
    if regression:
        errors = arm.absolute_errors
        return {"labels": len(errors), "mae": float(np.mean(errors)) if errors else None}
    return {"labels": arm.labeled, "accuracy": arm.accuracy}


def kpi_proxy(
    kpi: KpiConfig, sides: tuple[Side, Side], inputs: ReplayInputs, *, regression: bool
) -> dict[str, Any]:
    """What the champion's answers earned, and the same KPI on the rows the candidate
    answers alike: its outcome there would have been the same. On the rows where it
    answers otherwise the outcome is unknown (a canary's KPI gate measures it)."""
    candidate, champion = sides
    sent = inputs.outcomes.get(kpi.name, {})
    values = np.array([_number(sent.get(pid)) for pid in inputs.ids], dtype="float64")
    same = np.array(
        [
            (abs(float(a) - float(b)) <= 0.01 * max(abs(float(b)), 1e-9))
            if regression
            else category_key(a) == category_key(b)
            for a, b in zip(candidate.answers.tolist(), champion.answers.tolist(), strict=True)
        ],
        dtype=bool,
    )
    earned = kpi_of(kpi, values, len(values))
    alike = kpi_of(kpi, values[same], int(same.sum()))
    return {
        "name": kpi.name,
        "better": kpi.better,
        "champion": earned.value,
        "champion_interval": [earned.low, earned.high],
        "where_alike": alike.value,
        "outcomes": earned.outcomes,
        "answered_otherwise": float(1 - same.mean()) if len(same) else None,
    }


def _number(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
    )


def _latency(candidate: Side, champion: Side) -> dict[str, float | None]:
    ours = float(np.median(candidate.ms_per_row)) if candidate.ms_per_row else None
    theirs = float(np.median(champion.ms_per_row)) if champion.ms_per_row else None
    ratio = ours / theirs if ours is not None and theirs else None
    return {"candidate_ms_per_row": ours, "champion_ms_per_row": theirs, "ratio": ratio}


def _segments(sides: tuple[Side, Side], inputs: ReplayInputs, *, regression: bool) -> list[Segment]:
    """Per class the champion answered (a classifier), and per ``data.group`` value."""
    candidate, champion = sides
    keys: list[list[str]] = [[] for _ in inputs.ids]
    if not regression:
        for i, answer in enumerate(champion.answers.tolist()):
            keys[i].append(f"answered {answer}")
    if inputs.groups is not None:
        for i, group in enumerate(inputs.groups):
            keys[i].append(f"group {group}")
    rows: dict[str, list[int]] = {}
    for i, names in enumerate(keys):
        for name in names:
            rows.setdefault(name, []).append(i)
    out = []
    for name, members in sorted(rows.items()):
        picked = np.array(members)
        ours, theirs = candidate.answers[picked], champion.answers[picked]
        ids = [inputs.ids[i] for i in members]
        out.append(
            Segment(
                name,
                len(members),
                _match_share(ours, list(theirs), regression) or 0.0,
                _accuracy(ours, ids, inputs.labels) if not regression else None,
                _accuracy(theirs, ids, inputs.labels) if not regression else None,
                sum(pid in inputs.labels for pid in ids),
            )
        )
    return out


def _accuracy(answers: np.ndarray, ids: list[str], labels: dict[str, Any]) -> float | None:
    scored = [
        category_key(a) == category_key(labels[pid])
        for a, pid in zip(answers.tolist(), ids, strict=True)
        if pid in labels
    ]
    return float(np.mean(scored)) if scored else None


def _output_drift(candidate: Side, champion: Side) -> dict[str, Any]:
    """The candidate's answered classes against the champion's on the same rows."""
    ours = Counter(map(category_key, candidate.answers.tolist()))
    theirs = Counter(map(category_key, champion.answers.tolist()))
    classes = sorted(set(ours) | set(theirs))
    a = np.array([theirs.get(c, 0) for c in classes], dtype="float64")
    b = np.array([ours.get(c, 0) for c in classes], dtype="float64")
    score = jensen_shannon_distance(a, b)
    return {
        "method": "jensen_shannon",
        "score": score,
        "threshold": OUTPUT_DRIFT_THRESHOLD,
        "drifted": score > OUTPUT_DRIFT_THRESHOLD,
        "classes": classes,
        "champion": (a / max(a.sum(), 1)).tolist(),
        "candidate": (b / max(b.sum(), 1)).tolist(),
    }
