"""Per-minute digests of the prediction log: what monitoring needs, without the records.

A digest holds, for every (endpoint, model, version, role) and minute, the counts, sums,
sketches and histograms the report is made of (``Stats``), plus the few columns a label
arriving later is scored against (``LabelRows``: ids, times, probabilities). Every part
adds up: the digest of a day is the sum of its minutes', so a report merges digests instead
of re-reading records, and its memory does not grow with the traffic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.embedding_profile import EmbeddingProfile
from dnnops.data.pca import reconstruction_errors
from dnnops.data.profile import Profile
from dnnops.data.schema import category_key
from dnnops.evaluate.agreement import AgreementPanel, agreement_counts
from dnnops.evaluate.calibration import Calibrator
from dnnops.monitor.segments.scoring import finite_number
from dnnops.monitor.stats.dataset_drift import as_feature_frame
from dnnops.monitor.stats.drift import percentile_counts
from dnnops.monitor.stats.embedding_sample import (
    EmbeddingSample,
    merge_samples,
    sample_key,
    sample_of,
)
from dnnops.monitor.stats.sketch import QuantileSketch
from dnnops.predlog.records import PredictionRecord
from dnnops.vocabulary import GroupKey

BUCKET_S = 60.0
CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)
INVALID_STATUSES = (400, 413, 422)
INVALID_OUTPUT = "invalid_output"
"""The failure reason of a model that answered NaN or infinity."""


@dataclass(frozen=True)
class Reference:
    """What a version's inputs are judged against: its profile and how to read its inputs."""

    profile: Profile | None
    feature_names: list[str]
    tensor: bool
    regression: bool = False
    """The version answers numbers: its outputs are scored against numeric labels."""
    sensitive: frozenset[str] = frozenset()
    """Features the log keeps hashed or not at all: never tested for drift."""
    calibrator: Calibrator | None = None
    """A classifier's confidence calibration: its accuracy is estimated from it."""
    embedding: EmbeddingProfile | None = None
    """An image or text version's reference embeddings: embedding drift is tested on them."""
    agreement: AgreementPanel | None = None
    """A classifier's agreement panel: its accuracy under shift is estimated from it."""


@dataclass
class Stats:
    requests: int = 0
    predictions: int = 0
    invalid: int = 0
    """Refused by schema validation (400, 413, 422)."""
    server_errors: int = 0
    """Failed on the server's side (5xx): what the success rate counts against."""
    invalid_outputs: int = 0
    """Server errors where the model answered NaN or infinity."""
    answered_requests: int = 0
    """Answered requests, each counted once however many instances it held: what a
    latency objective judges (``slower_than`` counts them too)."""
    last_ts: float = 0.0
    latency: QuantileSketch = field(default_factory=QuantileSketch)
    model_latency: QuantileSketch = field(default_factory=QuantileSketch)
    slower_than: dict[str, int] = field(default_factory=dict)
    """Answered requests slower than each latency objective's threshold (ms, as text)."""
    confidence_sum: float = 0.0
    confidence_histogram: list[int] = field(default_factory=lambda: [0] * 10)
    cpu_ms_sum: float = 0.0
    cpu_ms_count: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    """A tiered version's answered predictions by the tier that answered ("0", "1", ...)."""
    feature_last_ts: dict[str, float] = field(default_factory=dict)
    numeric: dict[str, list[int]] = field(default_factory=dict)
    """Counts over the reference's percentile points (``drift.percentile_counts``)."""
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    pca_error_sum: float = 0.0
    pca_rows: int = 0
    input_rows: int = 0
    predicted_values: list[int] = field(default_factory=list)
    """A regressor's predictions counted over its training target's percentile points."""
    estimated_rows: int = 0
    """Answered predictions of a calibrated classifier: what accuracy is estimated over."""
    estimated_correct: float = 0.0
    """Sum of their calibrated confidence: the expected number right (CBPE)."""
    estimated_variance: float = 0.0
    """Sum of c(1 - c): the variance of that number (a sum of independent Bernoullis)."""
    atc_above: int = 0
    """Predictions whose calibrated confidence is above the version's ATC threshold."""
    embeddings: EmbeddingSample | None = None
    """A uniform sample of the logged embeddings of an image or text version."""
    agreement_rows: int = 0
    """Answered predictions with logged inputs that the version's agreement panel judged."""
    agreement_counts: list[int] = field(default_factory=list)
    """Rows on which each pair of (served model, panel members) agreed (``agreement.pairs``)."""

    @property
    def success_rate(self) -> float | None:
        """Answered / (answered + server errors): the one success definition of dnnops.
        A request refused for the client's fault (4xx) says nothing about the service and
        counts on neither side (``invalid`` tracks bad input). None: nothing to judge."""
        judged = self.predictions + self.server_errors
        return self.predictions / judged if judged else None

    @property
    def confidence_count(self) -> int:
        return sum(self.confidence_histogram)

    def merge(self, other: Stats) -> Stats:
        """The stats of both (neither is changed)."""
        return Stats(
            requests=self.requests + other.requests,
            predictions=self.predictions + other.predictions,
            invalid=self.invalid + other.invalid,
            server_errors=self.server_errors + other.server_errors,
            invalid_outputs=self.invalid_outputs + other.invalid_outputs,
            answered_requests=self.answered_requests + other.answered_requests,
            last_ts=max(self.last_ts, other.last_ts),
            latency=self.latency.merge(other.latency),
            model_latency=self.model_latency.merge(other.model_latency),
            slower_than=_add_counts(self.slower_than, other.slower_than),
            confidence_sum=self.confidence_sum + other.confidence_sum,
            confidence_histogram=_add_lists(self.confidence_histogram, other.confidence_histogram),
            cpu_ms_sum=self.cpu_ms_sum + other.cpu_ms_sum,
            cpu_ms_count=self.cpu_ms_count + other.cpu_ms_count,
            classes=_add_counts(self.classes, other.classes),
            tiers=_add_counts(self.tiers, other.tiers),
            feature_last_ts={
                name: max(self.feature_last_ts.get(name, 0.0), other.feature_last_ts.get(name, 0.0))
                for name in self.feature_last_ts.keys() | other.feature_last_ts.keys()
            },
            numeric={
                name: _add_lists(self.numeric.get(name, []), other.numeric.get(name, []))
                for name in self.numeric.keys() | other.numeric.keys()
            },
            categories={
                name: _add_counts(self.categories.get(name, {}), other.categories.get(name, {}))
                for name in self.categories.keys() | other.categories.keys()
            },
            agreement_rows=self.agreement_rows + other.agreement_rows,
            agreement_counts=_add_lists(self.agreement_counts, other.agreement_counts),
            pca_error_sum=self.pca_error_sum + other.pca_error_sum,
            pca_rows=self.pca_rows + other.pca_rows,
            input_rows=self.input_rows + other.input_rows,
            predicted_values=_add_lists(self.predicted_values, other.predicted_values),
            estimated_rows=self.estimated_rows + other.estimated_rows,
            estimated_correct=self.estimated_correct + other.estimated_correct,
            estimated_variance=self.estimated_variance + other.estimated_variance,
            atc_above=self.atc_above + other.atc_above,
            embeddings=merge_samples(self.embeddings, other.embeddings),
        )

    @classmethod
    def merged(cls, parts: Sequence[Stats]) -> Stats:
        """The stats of all ``parts``: ``merge`` folded, with the drift counts summed in one
        pass per feature (a day holds 1,440 minutes of them)."""
        if not parts:
            return cls()
        numeric = {
            name: np.sum([p.numeric[name] for p in parts if name in p.numeric], axis=0)
            for name in {n for p in parts for n in p.numeric}
        }
        out = cls()
        for part in parts:
            out = out.merge(replace(part, numeric={}))
        out.numeric = {name: [int(c) for c in counts] for name, counts in numeric.items()}
        return out

    def to_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["latency"] = self.latency.to_json()
        out["model_latency"] = self.model_latency.to_json()
        out["embeddings"] = self.embeddings.to_json() if self.embeddings is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stats:
        values = dict(data)
        values["latency"] = QuantileSketch.from_json(data["latency"])
        values["model_latency"] = QuantileSketch.from_json(data["model_latency"])
        if data.get("embeddings") is not None:
            values["embeddings"] = EmbeddingSample.from_json(data["embeddings"])
        return cls(**values)


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return out


def _add_lists(a: Sequence[int], b: Sequence[int]) -> list[int]:
    if not a or not b:
        return list(a or b)
    return [x + y for x, y in zip(a, b, strict=True)]


@dataclass
class LabelRows:
    """Answered predictions a label may score later: the id a label names, when, and the
    model's outputs."""

    ids: np.ndarray  # (N,) str: the prediction id, or for a shadow the id it mirrors
    ts: np.ndarray  # (N,) float64
    outputs: np.ndarray
    """(N, classes) float32 class probabilities of a classifier; (N, 1) predicted values of
    a regressor."""


@dataclass(frozen=True)
class MinuteCounts:
    """What the error budgets read of one minute: a few integers instead of its Stats."""

    bucket: float
    requests: int
    predictions: int
    server_errors: int
    slower_than: dict[str, int]
    invalid: int = 0
    """Requests refused as invalid input (400, 413, 422)."""
    answered_requests: int = 0
    """Answered requests, each once however many instances it held."""


@dataclass
class Digest:
    stats: dict[tuple[GroupKey, float], Stats] = field(default_factory=dict)
    """Keyed by group and the start of the minute."""
    rows: dict[GroupKey, LabelRows] = field(default_factory=dict)
    counts: dict[GroupKey, list[MinuteCounts]] = field(default_factory=dict)
    """A digest read for its counts only (``DigestStore.digest(counts_only=True)``) has
    these instead of ``stats``."""


def merge_digests(*parts: Digest) -> Digest:
    """The digest of all ``parts`` of a segment, earliest first: each minute's stats
    merged, each group's label rows joined in one copy (rows of another width than the
    group's first are left out, as within one part)."""
    stats: dict[tuple[GroupKey, float], Stats] = {}
    for part in parts:
        for minute, more in part.stats.items():
            stats[minute] = stats[minute].merge(more) if minute in stats else more
    joined: dict[GroupKey, list[LabelRows]] = {}
    for part in parts:
        for group, rows in part.rows.items():
            pieces = joined.get(group)
            if pieces is None:
                joined[group] = [rows]
            elif rows.outputs.shape[1:] == pieces[0].outputs.shape[1:]:
                pieces.append(rows)
    return Digest(stats, {group: _joined_rows(pieces) for group, pieces in joined.items()})


def _joined_rows(pieces: list[LabelRows]) -> LabelRows:
    if len(pieces) == 1:
        return pieces[0]
    return LabelRows(
        np.concatenate([p.ids for p in pieces]),
        np.concatenate([p.ts for p in pieces]),
        np.concatenate([p.outputs for p in pieces]),
    )


References = Callable[[str, str], Reference | None]
"""(model, version) to its reference; None when the registry does not know it."""


def digest_records(
    records: Iterable[PredictionRecord], references: References, thresholds_ms: Sequence[float]
) -> Digest:
    """The digest of ``records`` (one log segment's, typically)."""
    groups: dict[tuple[GroupKey, float], list[PredictionRecord]] = defaultdict(list)
    for record in records:
        groups[(group_key(record), record.ts // BUCKET_S * BUCKET_S)].append(record)
    digest = Digest()
    answered: dict[GroupKey, list[PredictionRecord]] = defaultdict(list)
    for (key, bucket), members in groups.items():
        reference = references(key[1], key[2])
        digest.stats[(key, bucket)] = stats_of(members, reference, thresholds_ms)
        regression = reference is not None and reference.regression
        answered[key] += [r for r in members if _scorable(r, regression)]
    for key, members in answered.items():
        if members:
            digest.rows[key] = _label_rows(members)
    return digest


def _scorable(record: PredictionRecord, regression: bool) -> bool:
    """An answered prediction a label can score: a classifier's with probabilities, a
    regressor's with a number."""
    if not record.answered:
        return False
    if regression:
        return finite_number(record.output) is not None
    return record.probabilities is not None


def group_key(record: PredictionRecord) -> GroupKey:
    return (record.endpoint, record.model, record.version, record.role)


def stats_of(
    records: Sequence[PredictionRecord],
    reference: Reference | None,
    thresholds_ms: Sequence[float],
) -> Stats:
    ok = [r for r in records if r.answered]
    latency = np.array([_or_nan(r.latency_ms) for r in ok], dtype="float64")
    confidence = np.array([c for c in (r.confidence for r in ok) if c is not None], dtype="float64")
    cpu = [r.cpu_ms for r in ok if r.cpu_ms is not None]
    first = np.array([r.part == 0 for r in ok], dtype=bool)  # one per request
    stats = Stats(
        requests=len(records),
        predictions=len(ok),
        invalid=sum(1 for r in records if r.status in INVALID_STATUSES),
        server_errors=sum(1 for r in records if r.status >= 500),
        invalid_outputs=sum(1 for r in records if r.reason == INVALID_OUTPUT),
        last_ts=max(r.ts for r in records),
        latency=QuantileSketch().add(latency),
        model_latency=QuantileSketch().add(
            np.array([_or_nan(r.model_ms) for r in ok], dtype="float64")
        ),
        slower_than={threshold_key(t): int(np.sum(latency[first] > t)) for t in thresholds_ms},
        answered_requests=int(first.sum()),
        confidence_sum=float(confidence.sum()),
        confidence_histogram=[int(c) for c in np.histogram(confidence, CONFIDENCE_BINS)[0]],
        cpu_ms_sum=float(sum(cpu)),
        cpu_ms_count=len(cpu),
        # classes of classifiers only (their records carry probabilities): a regression's
        # numbers would make one key per prediction
        classes=_count_keys(category_key(r.output) for r in ok if r.probabilities is not None),
        tiers=_count_keys(str(r.tier) for r in ok if r.tier is not None),
    )
    if reference is not None:
        _add_inputs(stats, records, reference)
        _add_predicted_values(stats, ok, reference)
        _add_estimate(stats, ok, reference)
        _add_agreement(stats, ok, reference)
    return stats


def _add_agreement(
    stats: Stats, answered: Sequence[PredictionRecord], reference: Reference
) -> None:
    """How often the served model and each panel member agreed on the logged inputs."""
    panel = reference.agreement
    kept = [r for r in answered if r.inputs is not None and r.probabilities]
    if panel is None or not kept or reference.tensor:
        return
    frame = as_feature_frame([r.inputs for r in kept], reference.feature_names, tensor=False)
    if not set(panel.features) <= set(frame.columns):
        return
    served = np.array([int(np.argmax(r.probabilities or [0.0])) for r in kept])
    stats.agreement_rows = len(kept)
    stats.agreement_counts = agreement_counts(panel.predictions(frame, served))


def _add_estimate(stats: Stats, answered: Sequence[PredictionRecord], reference: Reference) -> None:
    if reference.calibrator is not None:
        estimate = estimate_of(answered, reference.calibrator)
        stats.estimated_rows, stats.estimated_correct = estimate.rows, estimate.correct
        stats.estimated_variance, stats.atc_above = estimate.variance, estimate.atc_above


@dataclass(frozen=True)
class EstimateSums:
    """What calibrated confidence says of some predictions' accuracy, as sums that add up
    across minutes and segments."""

    rows: int = 0
    correct: float = 0.0
    """Expected number right: the sum of calibrated confidence (CBPE)."""
    variance: float = 0.0
    """Its variance: the sum of c(1 - c) (independent Bernoullis)."""
    atc_above: int = 0


def estimate_of(answered: Sequence[PredictionRecord], calibrator: Calibrator) -> EstimateSums:
    scored = [r.probabilities for r in answered if r.answered and r.probabilities]
    if not scored or len({len(p) for p in scored}) != 1:
        return EstimateSums()
    confidence = calibrator.confidence(np.array(scored, dtype="float64"))
    return EstimateSums(
        rows=len(confidence),
        correct=float(confidence.sum()),
        variance=float((confidence * (1.0 - confidence)).sum()),
        atc_above=int((confidence > calibrator.atc_threshold).sum()),
    )


def _add_predicted_values(
    stats: Stats, answered: Sequence[PredictionRecord], reference: Reference
) -> None:
    target = reference.profile.prediction_reference if reference.profile else None
    if not reference.regression or target is None or not target.percentiles:
        return
    numbers = (finite_number(r.output) for r in answered)
    values = [v for v in numbers if v is not None]
    if values:
        counts = percentile_counts(target.percentiles, np.array(values, dtype="float64"))
        stats.predicted_values = [int(c) for c in counts]


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def threshold_key(threshold_ms: float) -> str:
    return repr(float(threshold_ms))


def _count_keys(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in keys:
        out[key] = out.get(key, 0) + 1
    return out


def _add_inputs(stats: Stats, records: Sequence[PredictionRecord], reference: Reference) -> None:
    """Freshness, the drift counts and the PCA error of the logged inputs."""
    stats.feature_last_ts = last_seen(records, reference.feature_names)
    described = logged_descriptors(records)
    inputs = described or logged_inputs(records)
    if reference.profile is None or not inputs:
        return
    if described:  # an image or text model: drift is judged on its inputs' descriptors
        frame = pd.DataFrame(described)
    else:
        frame = as_feature_frame(inputs, reference.feature_names, reference.tensor)
    frame = frame.drop(columns=list(reference.sensitive), errors="ignore")
    stats.input_rows = len(frame)
    for feature in reference.profile.features:
        if feature.name not in frame.columns:
            continue
        column = frame[feature.name]
        if feature.kind == "numeric":
            values = np.asarray(column.to_numpy(), dtype="float64")
            counts = percentile_counts(feature.percentiles or [0.0, 0.0], values)
            stats.numeric[feature.name] = [int(c) for c in counts]
        else:
            keys = (category_key(v) for v in column.dropna().to_numpy())
            stats.categories[feature.name] = _count_keys(keys)
    if reference.embedding is not None:
        _add_embeddings(stats, records, reference.embedding)
    pca = reference.profile.pca
    if pca is not None and set(pca.features) <= set(frame.columns):
        rows = frame[pca.features].to_numpy(dtype="float64", na_value=np.nan)
        errors = reconstruction_errors(pca, rows)
        stats.pca_error_sum, stats.pca_rows = (
            float(np.nansum(errors)),
            int(np.isfinite(errors).sum()),
        )


def _add_embeddings(
    stats: Stats, records: Sequence[PredictionRecord], profile: EmbeddingProfile
) -> None:
    """The minute's sample of logged embeddings: a window's MMD test merges them."""
    kept = [
        r
        for r in records
        if r.answered and r.embedding is not None and len(r.embedding) == profile.dims
    ]
    if kept:
        keys = [sample_key(r.label_id) for r in kept]
        stats.embeddings = sample_of(keys, [r.embedding or [] for r in kept])


def logged_descriptors(records: Iterable[PredictionRecord]) -> list[dict[str, float]]:
    """The descriptors of the answered records of an image or text model (every record
    has them; sampling leaves out inputs only)."""
    return [r.descriptors for r in records if r.answered and r.descriptors is not None]


def logged_inputs(records: Iterable[PredictionRecord]) -> list[Any]:
    """The inputs of the answered records that the log kept (sampling may leave some out)."""
    return [r.inputs for r in records if r.answered and r.inputs is not None]


def last_seen(records: Iterable[PredictionRecord], names: list[str]) -> dict[str, float]:
    """When each feature last came with a value (records whose inputs were not sampled into
    the log do not count)."""
    last: dict[str, float] = {}
    for record in records:
        inputs, ts = record.inputs, record.ts
        if inputs is None:
            continue
        values = (
            inputs.items() if isinstance(inputs, dict) else zip(names, _flat(inputs), strict=False)
        )
        for name, value in values:
            if value is not None and value == value and ts > last.get(name, -1.0):  # NaN != NaN
                last[name] = ts
    return last


def _flat(inputs: Any) -> list[Any]:
    return list(np.asarray(inputs, dtype=object).ravel()) if isinstance(inputs, list) else [inputs]


def _label_rows(records: Sequence[PredictionRecord]) -> LabelRows:
    outputs = [r.probabilities or [float(r.output)] for r in records]
    width = len(outputs[0])
    kept = [i for i, row in enumerate(outputs) if len(row) == width]
    return LabelRows(
        ids=np.array([records[i].label_id for i in kept]),
        ts=np.array([records[i].ts for i in kept], dtype="float64"),
        outputs=np.array([outputs[i] for i in kept], dtype="float32"),
    )
