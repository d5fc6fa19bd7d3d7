"""Evaluation gates: pure decisions on a version's metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dnnops.config import GateConfig
from dnnops.errors import ConfigError


@dataclass(frozen=True)
class GateResult:
    metric: str
    value: float
    min: float | None
    max: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> GateResult:
        """A result as a manifest or an evaluation.json keeps it."""
        return cls(
            str(stored["metric"]),
            float(stored["value"]),
            stored.get("min"),
            stored.get("max"),
            bool(stored["passed"]),
        )


def failed_gates_text(gates: Sequence[GateResult]) -> str:
    """``accuracy 0.71 < 0.9, expected_calibration_error 0.39 > 0.05``: each failed gate."""
    parts = []
    for gate in gates:
        if gate.passed:
            continue
        below = gate.min is not None and (math.isnan(gate.value) or gate.value < gate.min)
        bound = f"< {gate.min:g}" if below else ""
        if not bound and gate.max is not None:
            bound = f"> {gate.max:g}"
        parts.append(f"{gate.metric} {gate.value:.4g} {bound}".strip())
    return ", ".join(parts)


def check_gates(metrics: Mapping[str, float], gates: Sequence[GateConfig]) -> list[GateResult]:
    """One result per gate; a NaN metric fails its gate (it cannot show it is good enough)."""
    unknown = [g.metric for g in gates if g.metric not in metrics]
    if unknown:
        raise ConfigError(
            f"evaluate.gates name unknown metrics {unknown}; "
            f"available: {', '.join(sorted(metrics))}"
        )
    results = []
    for gate in gates:
        value = float(metrics[gate.metric])
        passed = not math.isnan(value)
        if gate.min is not None:
            passed = passed and value >= gate.min
        if gate.max is not None:
            passed = passed and value <= gate.max
        results.append(GateResult(gate.metric, value, gate.min, gate.max, passed))
    return results


LATENCY = tuple(f"latency_{q}_ms_b{size}" for size in (1, 64) for q in ("p50", "p99"))
CLASSIFICATION = (
    "accuracy", "balanced_accuracy", "min_recall", "macro_f1", "roc_auc", "log_loss",
    "expected_calibration_error", "confidence_mean", "max_fpr", "max_fnr", "robust_accuracy",
)  # fmt: skip
REGRESSION = ("mae", "rmse", "r2", "mape", "robust_mae")


def gate_metrics(*, regression: bool, groups: bool, baseline: str) -> frozenset[str]:
    """The metrics a trained version's evaluation will have, known before training: gates
    naming anything else are refused before the first step, not after the last."""
    names = {*LATENCY, *(REGRESSION if regression else CLASSIFICATION)}
    if groups and not regression:
        names.add("group_accuracy_gap")
    if baseline == "hist_gradient_boosting":
        names |= {"beats_baseline", "baseline_mae_ratio" if regression else "baseline_gap"}
    return frozenset(names)


def check_gate_names(gates: Sequence[GateConfig], available: frozenset[str]) -> None:
    """``ConfigError`` naming gates on metrics the evaluation will not have."""
    unknown = [g.metric for g in gates if g.metric not in available]
    if unknown:
        raise ConfigError(
            f"evaluate.gates name metrics this model's evaluation will not have: {unknown}; "
            f"available: {', '.join(sorted(available))}"
        )


def all_passed(results: Sequence[GateResult]) -> bool:
    return all(r.passed for r in results)
