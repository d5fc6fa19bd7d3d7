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


def all_passed(results: Sequence[GateResult]) -> bool:
    return all(r.passed for r in results)
