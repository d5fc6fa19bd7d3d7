"""Rollout decisions as pure functions: each gate, the verdict of a check, the next state.

A check compares the candidate with the stable version over the same window (Flagger and
Argo Rollouts check the canary alone; comparing both sides cancels out what the whole
service suffers, like a slow disk or a traffic spike). A gate passes, fails, or is
skipped when it cannot be judged (no labels yet, no baseline traffic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from dnnops.config import KpiConfig, KpiGateConfig, RolloutConfig
from dnnops.monitor.segments.digest import EstimateSums
from dnnops.monitor.stats.drift import jensen_shannon_distance
from dnnops.monitor.stats.significance import binom_sf, contingency_p_value

Outcome = Literal["pass", "fail", "skip"]
Verdict = Literal["pass", "fail", "wait"]
Status = Literal["awaiting_approval", "running", "promoted", "rolled_back", "aborted"]
Action = Literal["none", "set_traffic", "promote", "rollback"]
ACTIVE: tuple[Status, ...] = ("awaiting_approval", "running")
MIN_LABELS = 30
"""Labels each side needs before accuracy is compared (fewer make the gate a coin flip)."""
SIGNIFICANCE = 0.01
"""A statistical gate fails only beyond this chance of the difference being noise."""
Z_CRITICAL = 2.326
"""One-sided standard normal quantile of 1 - SIGNIFICANCE."""


@dataclass(frozen=True)
class ArmStats:
    """What one version did in the check window."""

    version: str
    requests: int
    """Answered predictions plus server errors: what the version is judged on (a client's
    bad request says nothing about it; ``Stats.success_rate``'s definition)."""
    server_errors: int
    """Requests that failed on the server side (5xx): the client was not at fault."""
    latency_p99_ms: float
    class_counts: dict[str, int] = field(default_factory=dict)
    labeled: int = 0
    correct: int = 0
    latencies_ms: tuple[float, ...] = ()
    """Every answered request's latency, so the latency gate can tell a slower version
    from one slow request (empty: the gate compares the p99s alone)."""
    absolute_errors: tuple[float, ...] = ()
    """A regressor's |predicted - label| for each labeled prediction."""
    estimate: EstimateSums = field(default_factory=EstimateSums)
    """Accuracy as its calibrated confidence estimates it (no label needed)."""
    outcomes: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Per KPI, the values its mean is over (``monitor.judgements.kpis.kpi_values``)."""

    @property
    def success_rate(self) -> float:
        judged = self.requests  # answered + server errors, as Stats.success_rate
        return (judged - self.server_errors) / judged if judged else 1.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labeled if self.labeled else None


@dataclass(frozen=True)
class GateResult:
    gate: str
    outcome: Outcome
    value: float | None
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "outcome": self.outcome,
            "value": self.value,
            "limit": self.limit,
            "message": self.message,
        }


def success_rate_gate(candidate: ArmStats, minimum: float) -> GateResult:
    rate = candidate.success_rate
    outcome: Outcome = "pass" if rate >= minimum else "fail"
    message = f"success rate {rate:.2%} (needs >= {minimum:.2%})"
    return GateResult("success_rate", outcome, rate, minimum, message)


def latency_gate(
    candidate: ArmStats, stable: ArmStats, max_ratio: float, *, slack_ms: float
) -> GateResult:
    """p99 of the candidate within ``max_ratio`` of the stable's; differences under
    ``slack_ms`` are scheduling noise at millisecond latencies, not a regression."""
    if not np.isfinite(stable.latency_p99_ms) or not np.isfinite(candidate.latency_p99_ms):
        return GateResult("p99_latency_ratio", "skip", None, max_ratio, "no latencies to compare")
    ratio = candidate.latency_p99_ms / max(stable.latency_p99_ms, 1e-9)
    limit_ms = stable.latency_p99_ms * max_ratio + slack_ms
    within = candidate.latency_p99_ms <= limit_ms
    message = (
        f"p99 {candidate.latency_p99_ms:.1f} ms vs stable {stable.latency_p99_ms:.1f} ms "
        f"(ratio {ratio:.2f}, limit {max_ratio})"
    )
    if not within and candidate.latencies_ms:
        slow = sum(1 for latency in candidate.latencies_ms if latency > limit_ms)
        chance = slow_tail_p_value(slow, len(candidate.latencies_ms))
        within = chance >= SIGNIFICANCE
        message += (
            f"; {slow} of {len(candidate.latencies_ms)} requests over {limit_ms:.1f} ms "
            f"(p {chance:.2g} for a version no slower than the stable)"
        )
    return GateResult("p99_latency_ratio", "pass" if within else "fail", ratio, max_ratio, message)


def slow_tail_p_value(slow: int, requests: int) -> float:
    """Chance of ``slow`` or more of ``requests`` over the limit if the candidate were no
    slower than the stable: then at most 1% of its requests exceed the stable's p99, and
    the limit lies above that. Of 40 requests one slow one is chance (p 0.33); three are
    not (p 0.008); a p99 from 40 requests is little more than their maximum."""
    if slow <= 0:
        return 1.0
    return binom_sf(slow - 1, requests, 0.01)


def divergence_gate(candidate: ArmStats, stable: ArmStats, maximum: float) -> GateResult:
    """Jensen-Shannon distance between the predicted-class distributions of both sides.

    It fails only when the distance exceeds ``maximum`` and a chi-square test of homogeneity
    rejects "same distribution" at ``SIGNIFICANCE``: 100 canary predictions over 10 classes
    drawn from the very same distribution are about 0.13 apart by chance alone."""
    classes = sorted(set(candidate.class_counts) | set(stable.class_counts))
    if not classes or not sum(stable.class_counts.values()):
        return GateResult(
            "prediction_divergence", "skip", None, maximum, "no stable predictions to compare"
        )
    ours = np.array([candidate.class_counts.get(c, 0) for c in classes], dtype="float64")
    theirs = np.array([stable.class_counts.get(c, 0) for c in classes], dtype="float64")
    distance = jensen_shannon_distance(theirs, ours)
    p_value = homogeneity_p_value(ours, theirs)
    outcome: Outcome = "fail" if distance > maximum and p_value < SIGNIFICANCE else "pass"
    message = (
        f"prediction distribution JS distance {distance:.3f} (limit {maximum}, "
        f"chi-square p {p_value:.2g})"
    )
    return GateResult("prediction_divergence", outcome, distance, maximum, message)


def homogeneity_p_value(first: np.ndarray, second: np.ndarray) -> float:
    """p-value of "both count vectors come from one distribution" (chi-square, 2 x k)."""
    table = np.vstack([first, second])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return contingency_p_value(table)


def accuracy_gate(
    candidate: ArmStats, stable: ArmStats, max_drop: float, *, min_labels: int = MIN_LABELS
) -> GateResult:
    """Fails when the candidate's accuracy is below the stable's by more than ``max_drop``
    beyond sampling noise: a one-sided two-proportion z-test at ``SIGNIFICANCE`` (30
    labels put +-4 points of noise on a 95% accuracy)."""
    ours, theirs = candidate.accuracy, stable.accuracy
    if ours is None or theirs is None or min(candidate.labeled, stable.labeled) < min_labels:
        message = (
            f"labels: candidate {candidate.labeled}, stable {stable.labeled} "
            f"(each needs {min_labels})"
        )
        return GateResult("accuracy_drop", "skip", None, max_drop, message)
    drop = theirs - ours
    error = math.sqrt(
        ours * (1 - ours) / candidate.labeled + theirs * (1 - theirs) / stable.labeled
    )
    outcome: Outcome = "fail" if _beyond_noise(drop, max_drop, error) else "pass"
    message = (
        f"accuracy {ours:.2%} vs stable {theirs:.2%} on {candidate.labeled}/{stable.labeled} "
        f"labels (drop {drop:+.2%}, limit {max_drop:.2%})"
    )
    return GateResult("accuracy_drop", outcome, drop, max_drop, message)


def _beyond_noise(value: float, limit: float, standard_error: float) -> bool:
    """``value`` exceeds ``limit`` by more than sampling noise: a one-sided z-test at
    ``SIGNIFICANCE``."""
    return value > limit and (value - limit) / max(standard_error, 1e-12) > Z_CRITICAL


def error_gate(
    candidate: ArmStats, stable: ArmStats, max_increase: float, *, min_labels: int = MIN_LABELS
) -> GateResult:
    """A regressor's mean absolute error on labels against the stable's: fails when it is
    more than ``max_increase`` (a share) above, beyond sampling noise (a one-sided Welch
    z-test on the absolute errors at ``SIGNIFICANCE``)."""
    ours, theirs = np.array(candidate.absolute_errors), np.array(stable.absolute_errors)
    if min(len(ours), len(theirs)) < min_labels:
        message = (
            f"numeric labels: candidate {len(ours)}, stable {len(theirs)} (each needs {min_labels})"
        )
        return GateResult("error_increase", "skip", None, max_increase, message)
    mae, stable_mae = float(ours.mean()), float(theirs.mean())
    allowed = stable_mae * (1.0 + max_increase)
    increase = mae / stable_mae - 1.0 if stable_mae > 0 else (math.inf if mae > 0 else 0.0)
    error = math.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs))
    outcome: Outcome = "fail" if _beyond_noise(mae, allowed, error) else "pass"
    message = (
        f"MAE {mae:.4g} vs stable {stable_mae:.4g} on {len(ours)}/{len(theirs)} labels "
        f"(increase {increase:+.1%}, limit {max_increase:.0%})"
    )
    return GateResult("error_increase", outcome, increase, max_increase, message)


def kpi_gate(
    candidate: ArmStats, stable: ArmStats, gate: KpiGateConfig, *, better: str
) -> GateResult:
    """The candidate's business KPI against the stable's: fails when it is worse (lower
    where higher is better, or higher) by more than ``max_drop`` beyond sampling noise (a
    one-sided Welch z-test at ``SIGNIFICANCE``), however accurate the candidate is."""
    name = f"kpi_{gate.kpi}"
    ours = np.array(candidate.outcomes.get(gate.kpi, ()), dtype="float64")
    theirs = np.array(stable.outcomes.get(gate.kpi, ()), dtype="float64")
    if min(len(ours), len(theirs)) < gate.min_outcomes:
        message = (
            f"{gate.kpi} outcomes: candidate {len(ours)}, stable {len(theirs)} "
            f"(each needs {gate.min_outcomes})"
        )
        return GateResult(name, "skip", None, gate.max_drop, message)
    mean, stable_mean = float(ours.mean()), float(theirs.mean())
    worse = stable_mean - mean if better == "higher" else mean - stable_mean
    error = math.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs))
    outcome: Outcome = "fail" if _beyond_noise(worse, gate.max_drop, error) else "pass"
    message = (
        f"{gate.kpi} {mean:.4g} vs stable {stable_mean:.4g} on {len(ours)}/{len(theirs)} "
        f"outcomes ({better} is better; worse by {worse:+.4g}, limit {gate.max_drop:g})"
    )
    return GateResult(name, outcome, worse, gate.max_drop, message)


def evaluate_gates(
    candidate: ArmStats,
    stable: ArmStats,
    policy: RolloutConfig,
    *,
    kpis: Sequence[KpiConfig] = (),
) -> list[GateResult]:
    better = {kpi.name: kpi.better for kpi in kpis}
    accuracy = accuracy_gate(candidate, stable, policy.max_accuracy_drop)
    divergence = divergence_gate(candidate, stable, policy.max_prediction_divergence)
    if divergence.outcome == "fail" and _more_accurate(candidate, stable, accuracy):
        # Divergence stands in for quality while labels are missing; a candidate that is
        # measurably at least as accurate is expected to disagree with a worse stable.
        divergence = replace(
            divergence,
            outcome="pass",
            message=divergence.message + "; diverges, but at least as accurate on labels",
        )
    return [
        success_rate_gate(candidate, policy.min_success_rate),
        latency_gate(
            candidate, stable, policy.max_p99_latency_ratio, slack_ms=policy.latency_slack * 1000
        ),
        divergence,
        accuracy,
        error_gate(candidate, stable, policy.max_error_increase),
        *(
            [estimated_accuracy_gate(candidate, stable, policy.max_estimated_accuracy_drop)]
            if policy.max_estimated_accuracy_drop is not None
            else []
        ),
        *(kpi_gate(candidate, stable, gate, better=better[gate.kpi]) for gate in policy.kpi_gates),
    ]


def estimated_accuracy_gate(
    candidate: ArmStats, stable: ArmStats, max_drop: float, *, min_rows: int = MIN_LABELS
) -> GateResult:
    """Before labels: the candidate's estimated accuracy (mean calibrated confidence) below
    the stable's by more than ``max_drop`` beyond the estimates' own noise (a one-sided
    z-test at ``SIGNIFICANCE`` on the variances of both sums) fails the step."""
    ours, theirs = candidate.estimate, stable.estimate
    if min(ours.rows, theirs.rows) < min_rows:
        message = (
            f"calibrated predictions: candidate {ours.rows}, stable {theirs.rows} "
            f"(each needs {min_rows}; versions registered before calibration have none)"
        )
        return GateResult("estimated_accuracy_drop", "skip", None, max_drop, message)
    drop = theirs.correct / theirs.rows - ours.correct / ours.rows
    error = math.sqrt(ours.variance / ours.rows**2 + theirs.variance / theirs.rows**2)
    outcome: Outcome = "fail" if _beyond_noise(drop, max_drop, error) else "pass"
    message = (
        f"estimated accuracy {ours.correct / ours.rows:.2%} vs stable "
        f"{theirs.correct / theirs.rows:.2%} (drop {drop:+.2%}, limit {max_drop:.2%}; no labels)"
    )
    return GateResult("estimated_accuracy_drop", outcome, drop, max_drop, message)


def _more_accurate(candidate: ArmStats, stable: ArmStats, accuracy: GateResult) -> bool:
    ours, theirs = candidate.accuracy, stable.accuracy
    return accuracy.outcome == "pass" and ours is not None and theirs is not None and ours >= theirs


def verdict(
    candidate: ArmStats, gates: list[GateResult], min_requests: int, *, min_success_rate: float
) -> Verdict:
    """Judge only with ``min_requests`` behind the candidate, except that a candidate whose
    server errors already exceed what ``min_success_rate`` allows over ``min_requests``
    fails at once: a broken model is not fed more traffic to prove it."""
    if candidate.requests < min_requests:
        allowed = (1.0 - min_success_rate) * max(min_requests, 1)
        return "fail" if candidate.server_errors > allowed else "wait"
    return "fail" if any(g.outcome == "fail" for g in gates) else "pass"


@dataclass(frozen=True)
class RolloutState:
    """One rollout as persisted: where it stands and every check it went through."""

    id: int
    endpoint: str
    model: str
    candidate: int
    baseline: int | None
    mode: str
    steps: tuple[int, ...]
    policy: dict[str, Any]
    status: Status
    step: int
    failed_checks: int
    step_started: float
    created: float
    updated: float
    history: tuple[dict[str, Any], ...] = ()
    reason: str = ""

    @property
    def weight(self) -> int:
        """Traffic share of the candidate at the current step; 0 means shadow."""
        return self.steps[min(self.step, len(self.steps) - 1)]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "model": self.model,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "mode": self.mode,
            "steps": list(self.steps),
            "status": self.status,
            "step": self.step,
            "weight": self.weight,
            "failed_checks": self.failed_checks,
            "step_started": self.step_started,
            "created": self.created,
            "updated": self.updated,
            "reason": self.reason,
            "history": list(self.history),
        }

    def summary(self) -> dict[str, Any]:
        """The state and its last check without every check (endpoints, dashboard, CLI)."""
        shown = self.to_dict()
        del shown["history"]
        shown["checks"] = len(self.history)
        shown["last_check"] = self.history[-1] if self.history else None
        return shown


def plan_steps(mode: str, steps: list[int]) -> tuple[int, ...]:
    """Blue-green is one step at 100% (its check is the verification window); shadow
    mode watches a mirror first (weight 0), then walks the canary steps."""
    if mode == "blue_green":
        return (100,)
    if mode == "shadow":
        return (0, *steps)
    return tuple(steps)


@dataclass(frozen=True)
class Transition:
    state: RolloutState
    action: Action


def is_due(state: RolloutState, now: float, interval_s: float) -> bool:
    return state.status == "running" and now - state.step_started >= interval_s


def advance(
    state: RolloutState,
    result: Verdict,
    gates: list[GateResult],
    *,
    now: float,
    failure_threshold: int,
) -> Transition:
    """The next state after a check: next step or promote on pass, count the failure and
    roll back at ``failure_threshold`` on fail, nothing on wait."""
    check = {
        "at": now,
        "step": state.step,
        "weight": state.weight,
        "verdict": result,
        "gates": [g.to_dict() for g in gates],
    }
    history = (*state.history, check)
    if result == "wait":
        return Transition(replace(state, updated=now, history=history), "none")
    if result == "fail":
        failed = state.failed_checks + 1
        if failed >= failure_threshold:
            reasons = "; ".join(g.message for g in gates if g.outcome == "fail")
            rolled = replace(
                state,
                status="rolled_back",
                failed_checks=failed,
                updated=now,
                history=history,
                reason=f"{failed} failed check(s): {reasons}",
            )
            return Transition(rolled, "rollback")
        return Transition(
            replace(state, failed_checks=failed, step_started=now, updated=now, history=history),
            "none",
        )
    if state.step + 1 >= len(state.steps):
        promoted = replace(
            state, status="promoted", updated=now, history=history, reason="every step passed"
        )
        return Transition(promoted, "promote")
    moved = replace(state, step=state.step + 1, step_started=now, updated=now, history=history)
    return Transition(moved, "set_traffic")
