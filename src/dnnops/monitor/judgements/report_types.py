"""The monitoring report as a frozen tree of typed sections.

``build_report`` returns a ``Report``; the server's loops, the dashboard, the CLI and
retraining read its fields, and ``Report.to_json`` turns it into JSON once, at the edge
(the CLI's ``--json``, ``GET /v2/monitor``, the HTML page). The JSON's shape is written to
``report.schema.json`` beside this module; a test regenerates it from these types, so a
change to the report's JSON is a change to that file, made on purpose.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dnnops.monitor.judgements.sli import Quality, VersionSlis
from dnnops.monitor.judgements.slo import BurnAlert, BurnRate
from dnnops.monitor.stats.dataset_drift import DatasetDrift

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")


@dataclass(frozen=True)
class ObjectiveStatus:
    """One SLO objective over the SLO window (not the report's)."""

    name: str
    kind: str
    target: float
    window_s: float
    current: float | None
    """Share of good events; None while nothing was judged in the window."""
    met: bool | None
    error_budget_remaining: float | None
    """1 - bad / allowed: negative when overspent."""
    events: int
    burn_rates: list[BurnRate] = field(default_factory=list)
    """Each burn-rate rule (``slo.burn_rules``) read now: how close each alert is."""


@dataclass(frozen=True)
class PredictionDrift:
    """The predictions' distribution against a reference: a classifier's classes against
    the training labels', a regressor's values against its test-split predictions."""

    method: str
    score: float
    threshold: float
    drifted: bool
    reference: list[float]
    current: list[float]
    classes: list[str] | None = None
    """A classifier's class names, in the order of ``reference`` and ``current``."""
    bins: list[str] | None = None
    """A regressor's value bins, in the order of ``reference`` and ``current``."""
    reference_of: str | None = None
    """A regressor's reference: ``test_predictions``, or ``target`` for older versions."""


@dataclass(frozen=True)
class ConfidenceShift:
    live_mean: float
    baseline_mean: float | None
    shift: float | None


@dataclass(frozen=True)
class Cost:
    cpu_ms_per_prediction: float | None
    per_1k_predictions: float | None
    currency: str
    cpu_second_price: float


@dataclass(frozen=True)
class TierShare:
    tier: int
    member: str
    """The tier's model@version."""
    predictions: int
    share: float
    """Of the version's answered predictions in the window."""
    threshold: float | None
    """Calibrated confidence under which it escalates; None for the last tier."""


@dataclass(frozen=True)
class TierSplit:
    """Which tier of a tiered version answered the window's predictions."""

    tiers: list[TierShare]
    escalation_rate: float | None
    """The share the first tier handed on; None before any prediction."""
    expected_escalation_rate: float
    """What it was on the rows the thresholds were chosen on: far above it, the inputs
    are harder than those rows (or drifted); the cost per prediction grows with it."""


@dataclass(frozen=True)
class EstimatedAccuracy:
    """Accuracy estimated from calibrated confidence, before any label arrives: CBPE (the
    mean calibrated confidence, NannyML's confidence-based performance estimation) with an
    interval (95% of the window's sampling noise, widened by the calibrator's own error on
    held-out rows), and ATC (Garg et al. 2022: the share above a threshold chosen on held-out
    rows)."""

    predictions: int
    cbpe: float
    low: float
    high: float
    atc: float
    calibration: str
    """The calibrator fitted at registration: ``temperature`` or ``isotonic``."""
    reliable: bool
    """False when the inputs left the training support (multivariate drift): calibration
    fitted on held-out rows says little about inputs unlike them."""
    observed: float | None = None
    """Accuracy on the labels that arrived for the window's predictions (None: none yet)."""
    error: float | None = None
    """``value - observed``: how far the estimate the window used was from the labels."""
    agreement: float | None = None
    """Accuracy carried along the agreement of the version's panel (``evaluate/agreement``)
    on the window's logged inputs; None without a panel or logged inputs."""
    method: Literal["cbpe", "agreement"] = "cbpe"
    """The estimate the window used: ``agreement`` when the inputs shifted (not
    ``reliable``) and the panel judged them, CBPE otherwise."""

    @property
    def value(self) -> float:
        """The estimate the window used (``method``)."""
        if self.method == "agreement" and self.agreement is not None:
            return self.agreement
        return self.cbpe


@dataclass(frozen=True)
class Explanations:
    """The window's predictions explained in the background (``monitor.explain.sample``):
    how many, and where their attributions go against the validation split's."""

    explained: int
    coverage: float
    """Explained / answered predictions of the window: what was actually stored."""
    method: str | None
    importance: dict[str, float]
    """Each feature's share of the mean |attribution| (the top ten), live."""
    reference: dict[str, float] | None
    """The same on the validation split at registration (None: an older version)."""
    shift: float | None
    """Half the L1 distance between the live and validation profiles: the share of the
    attributions that moved to other features."""
    drifted: bool | None
    """``shift`` above ``monitor.explain.drift_threshold``; None with fewer explanations
    than ``monitor.explain.min_explained``."""


@dataclass(frozen=True)
class Kpi:
    """A business KPI of one version over the window (``monitor.kpis``): the mean of its
    outcomes (a rate when they are all 0 or 1), with a 95% interval."""

    name: str
    better: str
    """``higher`` or ``lower``."""
    kind: str
    """``rate`` (every outcome 0 or 1: Wilson's interval) or ``mean`` (a normal one)."""
    value: float | None
    """None before any outcome arrived."""
    low: float | None
    high: float | None
    outcomes: int
    """Outcomes that arrived for the window's predictions."""
    events: int
    """What the mean is over: the outcomes, or (``missing: zero``) every answered prediction."""


@dataclass(frozen=True)
class SignalReading:
    """One alerting signal of a version read now (``monitor.alerts``): more is worse."""

    signal: str
    value: float
    threshold: float
    """Past it (for the signal's hold-down), the signal's alert fires."""
    clear: float
    """Under it, a firing alert clears: between the two, it stays as it is."""
    evidence: dict[str, Any]
    """What an on-call engineer looks at first: features, classes, counts."""

    @property
    def past(self) -> bool:
        return self.value > self.threshold


@dataclass(frozen=True)
class VersionSection:
    """Everything the report says about one served version of one endpoint."""

    slis: VersionSlis
    slo: list[ObjectiveStatus] = field(default_factory=list)
    alerts: list[BurnAlert] = field(default_factory=list)
    """The burn-rate rules that fire, each with its runbook."""
    drift: DatasetDrift | None = None
    quality: Quality | None = None
    """Quality on the labels that arrived for the window's predictions."""
    prediction_drift: PredictionDrift | None = None
    confidence: ConfidenceShift | None = None
    cost: Cost | None = None
    feature_freshness_s: dict[str, float | None] = field(default_factory=dict)
    explainability_coverage: float | None = None
    """The share of the window's answered predictions with a stored explanation."""
    baseline_accuracy: float | None = None
    """The version's accuracy on its test split (a classifier's)."""
    baseline_mae: float | None = None
    """The version's mean absolute error on its test split (a regressor's)."""
    gates_passed: bool | None = None
    """Whether the version passed its evaluation gates (None: it had none)."""
    estimated_accuracy: EstimatedAccuracy | None = None
    """Before labels: what calibrated confidence says accuracy is (classifiers)."""
    explanations: Explanations | None = None
    tiers: TierSplit | None = None
    """A tiered version's split between its tiers."""
    kpis: list[Kpi] = field(default_factory=list)
    """Business outcomes joined with the window's predictions, one per ``monitor.kpis``."""
    signals: list[SignalReading] = field(default_factory=list)
    """The alerting signals that could be judged, each against its threshold."""
    error: str | None = None
    """Why the sections that need the registry's version are missing."""


@dataclass(frozen=True)
class SegmentCounts:
    digested: int
    """Segments digested for this report (new or grown since the last one)."""
    from_disk: int
    """Segments whose digest was read back from disk."""


@dataclass(frozen=True)
class Report:
    generated_at: float
    window_s: float
    window_start: float
    records: int
    segments: SegmentCounts
    versions: list[VersionSection]

    @property
    def drift(self) -> DatasetDrift | None:
        """The drift of the busiest version: the one most traffic sees."""
        busiest = max(self.versions, key=lambda v: v.slis.predictions, default=None)
        return busiest.drift if busiest else None

    def of_endpoint(self, endpoint: str) -> Report:
        """The same report with only ``endpoint``'s versions."""
        return self.of_endpoints({endpoint})

    def of_endpoints(self, endpoints: set[str]) -> Report:
        """The same report with only the versions of ``endpoints``."""
        kept = [v for v in self.versions if v.slis.endpoint in endpoints]
        return replace(self, versions=kept)

    def section(self, model: str, version: str) -> VersionSection | None:
        return next(
            (v for v in self.versions if (v.slis.model, v.slis.version) == (model, version)),
            None,
        )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (numbers NaN where nothing was measured: serialisers write
        them as null)."""
        out = asdict(self)
        drift = self.drift
        out["drift"] = asdict(drift) if drift is not None else None
        return out


def report_schema() -> dict[str, Any]:
    """The JSON schema of ``Report.to_json``, derived from the dataclasses (by pydantic).
    A number the report could not measure (a p99 of no requests) is NaN in Python and
    null in JSON, so every number in the schema may be null."""
    from pydantic import TypeAdapter

    schema: dict[str, Any] = _nullable_numbers(
        TypeAdapter(Report).json_schema(mode="serialization")
    )
    schema["properties"]["drift"] = {
        "anyOf": [{"$ref": "#/$defs/DatasetDrift"}, {"type": "null"}],
        "description": "The drift of the busiest version (the most predictions).",
    }
    schema["required"] = [*schema["required"], "drift"]
    return schema


def _nullable_numbers(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "number":
            return {**node, "type": ["number", "null"]}
        return {key: _nullable_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nullable_numbers(item) for item in node]
    return node


def write_schema(path: Path = SCHEMA_FILE) -> None:
    """Rewrite the schema file (``python -m dnnops.monitor.judgements.report_types`` after changing
    the report's types on purpose)."""
    path.write_text(json.dumps(report_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_schema()
