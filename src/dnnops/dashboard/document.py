"""The dashboard's document as types: what ``/v1/dashboard/NAME`` serves and the static
report embeds, read by ``static/app.js``.

Typed so that the page's script and the server cannot drift apart unseen: a test reads
every ``doc.NAME`` the script uses and checks it against these fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dnnops.monitor.judgements.report_types import VersionSection
from dnnops.monitor.segments.timeseries import Timeline
from dnnops.registry.alerts import StoredAlert
from dnnops.vocabulary import Task


@dataclass(frozen=True)
class VersionRow:
    """One version of the model in the versions table."""

    version: int
    created_at: str
    status: str
    aliases: list[str]
    accuracy: float | None
    mae: float | None
    gates_passed: bool | None


@dataclass(frozen=True)
class FeatureDistribution:
    """Reference and live shares of one feature over the reference's bins."""

    feature: str
    method: str
    score: float
    drifted: bool
    bins: list[str]
    reference: list[float]
    live: list[float]


@dataclass(frozen=True)
class Health:
    """0-100 for the version taking the traffic, from the parts there is data for."""

    score: int | None
    """None when no part has data."""
    parts: dict[str, float | None] = field(default_factory=dict)
    """Each part's share met, 0-1 (slo, drift, quality); None: no data, left out."""
    capped: str | None = None
    """Why the score is held below 100 whatever its parts (a version that failed its
    evaluation gates)."""


@dataclass(frozen=True)
class DashboardSeries(Timeline):
    """The report's timeline plus the share of drifted features per bucket (None where a
    bucket had too few inputs to judge)."""

    drift_share: list[float | None] = field(default_factory=list)


@dataclass(frozen=True)
class MediaSamples:
    """An image or text model's inputs as a person sees them: the window's latest beside
    a few of the version's held-out rows (images as small previews, texts as text)."""

    kind: Literal["image", "text"]
    live: list[str]
    reference: list[str]


@dataclass(frozen=True)
class DashboardDocument:
    """Everything the dashboard's three views show for one endpoint."""

    endpoint: str
    model: str
    generated_at: float
    window_s: float
    current_version: str | None
    task: Task
    cpu_second_price: float
    versions: list[VersionRow]
    sections: list[VersionSection]
    series: DashboardSeries
    features: list[FeatureDistribution]
    health: Health
    live: dict[str, Any] | None
    """The server's view of the endpoint (weights, rollout); None in the static report."""
    rollouts: list[dict[str, Any]]
    """The latest rollouts' summaries (``RolloutState.summary``), newest first."""
    decisions: list[dict[str, Any]]
    """The model's audit log, newest first."""
    alerts: list[StoredAlert]
    samples: MediaSamples | None = None
    """An image or text model's sample inputs (the debug view); None for a table's."""
    replays: list[dict[str, Any]] = field(default_factory=list)
    """The latest replays before traffic (``dnnops replay``), newest first: the audit log's
    record of each (candidate, champion, rows, agreement, verdict, the report's file)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
