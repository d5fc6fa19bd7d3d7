"""The monitoring report: SLIs, drift, quality on labels and SLO budgets for a window.

This module composes; the floors compute. It reads the log's segments into per-minute
digests (``segments.digest_store``, kept on disk for every settled segment, so a report
over a day merges a day of minutes instead of parsing a day of records), rolls the window
up (``segments.rollup``), loads each served version's references from the registry
(verified like every load), and asks ``judgements`` for each version's signals and
budgets.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache, partial
from pathlib import Path

import numpy as np

from dnnops.config import KpiConfig, MonitorConfig, SloConfig
from dnnops.errors import DnnopsError
from dnnops.evaluate.decision import Decision
from dnnops.monitor.explanations import explanations_in_window
from dnnops.monitor.judgements.budgets import version_budgets
from dnnops.monitor.judgements.kpis import kpi_of
from dnnops.monitor.judgements.report_types import Report, SegmentCounts
from dnnops.monitor.judgements.signal_readings import RecentRequests
from dnnops.monitor.judgements.signals import version_section
from dnnops.monitor.judgements.sli import slis_from_stats
from dnnops.monitor.judgements.slo import burn_rules, longest_window_s
from dnnops.monitor.segments.digest import MinuteCounts, Reference, Stats, digest_records
from dnnops.monitor.segments.digest_store import SETTLED_S, DigestStore, fingerprint, segment_key
from dnnops.monitor.segments.label_columns import FeedbackColumns
from dnnops.monitor.segments.label_join import FeedbackSegment, LabelJoin, Segment
from dnnops.monitor.segments.labeled_rows import LabeledRows, label_values
from dnnops.monitor.segments.rollup import Rollup, bucket_start
from dnnops.plugins import SLO_KINDS
from dnnops.predlog.reader import (
    FEEDBACK,
    OUTCOMES,
    PREDICTIONS,
    outcome_folder,
    segment_modified,
    segments,
)
from dnnops.predlog.writer import segment_started
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import Registry
from dnnops.vocabulary import GroupKey, VersionKey


def build_report(
    registry: Registry,
    logs_dir: Path,
    window_s: float,
    *,
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float | None = None,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
    store: DigestStore | None = None,
    remember: dict[tuple[str, str], LoadedVersion | None] | None = None,
) -> Report:
    """``loaded`` holds versions already in memory (a server's), keyed by (model, version),
    so a report asked of a running server does not re-read and re-verify their artifacts;
    ``store`` is the server's digest store, which follows the segments being written;
    ``remember`` keeps the versions this report loaded, for the next one.
    The window covers whole minutes: it starts at the minute ``window_s`` before now."""
    moment = time.time() if now is None else now
    versions = _Versions(registry, dict(loaded or {}))
    if remember is not None:
        versions.known = remember
        remember.update({k: v for k, v in (loaded or {}).items() if k not in remember})
    store = store or digest_store(logs_dir, slo)
    rollup = _rollup(
        logs_dir, versions, store, slo=slo, moment=moment, window_s=window_s, kpis=monitor.kpis
    )
    served, served_predictions, endpoint_totals = _per_version(rollup)
    explained = explanations_in_window(logs_dir, rollup.start, moment)
    sections = []
    for key, stats in sorted(served.items()):
        slis = slis_from_stats(
            key,
            stats,
            served_predictions[key],
            endpoint_total=endpoint_totals[key[0]],
            now=moment,
            window_s=window_s,
        )
        labeled = _labeled_of(rollup.labeled, key)
        outcomes = {
            kpi.name: (_labeled_of(rollup.outcomes.get(kpi.name, {}), key), kpi.better)
            for kpi in monitor.kpis
        }
        history = [
            m for (e, mo, v, _), ms in rollup.history.items() if (e, mo, v) == key for m in ms
        ]
        objectives, alerts = version_budgets(
            history,
            labeled,
            classes=versions.classes(key),
            decision=versions.decision(key),
            slo=slo,
            now=moment,
            runbooks=monitor.runbook_url,
            outcomes=outcomes,
        )
        section = version_section(
            versions.get(key[1], key[2]),
            slis,
            stats,
            labeled=labeled.since(rollup.start),
            monitor=monitor,
            now=moment,
            explained=explained.get(key),
            recent=recent_requests(history, moment, monitor.alerts.client_errors_window),
        )
        kpis = [
            kpi_of(kpi, label_values(outcomes[kpi.name][0].since(rollup.start)), slis.predictions)
            for kpi in monitor.kpis
        ]
        sections.append(replace(section, slo=objectives, alerts=alerts, kpis=kpis))
    return Report(
        generated_at=moment,
        window_s=window_s,
        window_start=rollup.start,
        records=sum(stats.requests for stats in served.values()),
        segments=SegmentCounts(digested=rollup.digested, from_disk=rollup.reused),
        versions=sections,
    )


def recent_requests(history: list[MinuteCounts], now: float, window_s: float) -> RecentRequests:
    """Requests judged for client errors over the last ``window_s`` (whole minutes, as the
    burn rates' windows): the refused, the answered and the failed on the server's side."""
    since = bucket_start(now - window_s)
    recent = [m for m in history if m.bucket >= since]
    refused = sum(m.invalid for m in recent)
    judged = refused + sum(m.predictions + m.server_errors for m in recent)
    return RecentRequests(window_s, judged, refused)


def _per_version(
    rollup: Rollup,
) -> tuple[dict[VersionKey, Stats], dict[VersionKey, int], dict[str, int]]:
    """The window's stats per version (served and shadow roles merged), its answered
    predictions, and each endpoint's (shadow copies answer no one, so they are not counted)."""
    served: dict[VersionKey, Stats] = {}
    served_predictions: dict[VersionKey, int] = defaultdict(int)
    endpoint_totals: dict[str, int] = defaultdict(int)
    for (endpoint, model, version, role), stats in rollup.window_stats().items():
        key = (endpoint, model, version)
        served[key] = served.get(key, Stats()).merge(stats)
        if role == "served":
            served_predictions[key] += stats.predictions
            endpoint_totals[endpoint] += stats.predictions
    return served, served_predictions, endpoint_totals


def reference_lookup(
    registry: Registry, known: Mapping[tuple[str, str], LoadedVersion]
) -> Callable[[str, str], Reference | None]:
    """(model, version) -> its digest reference, each version loaded at most once."""
    return _Versions(registry, dict(known)).reference


class _Versions:
    """Registry versions by (model, version), each loaded (and verified) at most once."""

    def __init__(self, registry: Registry, known: dict[tuple[str, str], LoadedVersion]):
        self.registry = registry
        self.known: dict[tuple[str, str], LoadedVersion | None] = dict(known)

    def get(self, model: str, version: str) -> LoadedVersion | None:
        if (model, version) not in self.known:
            self.known[(model, version)] = _load(self.registry, model, version)
        return self.known[(model, version)]

    def reference(self, model: str, version: str) -> Reference | None:
        found = self.get(model, version)
        if found is None:
            return None
        schema = found.schema
        return Reference(
            found.profile,
            schema.feature_names,
            schema.kind == "tensor",
            found.is_regression,
            schema.sensitive_names,
            found.calibrator,
            found.embedding,
            found.agreement,
        )

    def classes(self, key: VersionKey) -> list[int | str]:
        found = self.get(key[1], key[2])
        return list(found.classes) if found is not None else []

    def decision(self, key: VersionKey) -> Decision | None:
        found = self.get(key[1], key[2])
        return found.decision if found is not None else None


def digest_store(logs_dir: Path, slo: SloConfig) -> DigestStore:
    """The digests of ``logs_dir``'s prediction log for ``slo``'s latency thresholds."""
    return DigestStore(logs_dir / "digests", fingerprint(latency_thresholds_ms(slo)))


def latency_thresholds_ms(slo: SloConfig) -> list[float]:
    return [
        (o.threshold or 0.0) * 1000 for o in slo.objectives if SLO_KINDS.get(o.kind).slower_than
    ]


def _rollup(
    logs_dir: Path,
    versions: _Versions,
    store: DigestStore,
    *,
    slo: SloConfig,
    moment: float,
    window_s: float,
    kpis: Sequence[KpiConfig] = (),
) -> Rollup:
    """Every prediction segment written within the longest burn window, digested (from the
    digest kept on disk when the segment has not changed since)."""
    # budgets read the whole SLO window (30 d by default) from the minutes' digests
    oldest = moment - max(longest_window_s(burn_rules(slo)), slo.window, window_s)
    thresholds = latency_thresholds_ms(slo)
    built_before = store.built
    # a label comes after its prediction: older feedback segments cannot match any record
    join = LabelJoin(logs_dir / "digests", _feedback_segments(logs_dir, oldest, now=moment))
    # each KPI's outcomes are joined as labels are, with their own kept columns and ledger
    kpi_joins = {
        kpi.name: LabelJoin(
            logs_dir / "digests" / OUTCOMES / kpi.name,
            _feedback_segments(logs_dir, oldest, now=moment, kpi=kpi.name),
        )
        for kpi in kpis
    }
    rollup = Rollup(moment - window_s, oldest, moment)
    listed = segments(logs_dir / "predictions", "predictions")
    store.prune(listed)

    for segment in listed:
        try:
            status = segment.stat()
        except FileNotFoundError:  # removed by retention since it was listed
            continue
        if status.st_mtime < bucket_start(oldest):
            continue  # last written before the oldest minute any window reaches
        part = _segment(segment, status, now=moment)
        hashes = cache(partial(store.id_hashes, segment))
        wanted = join.wanted(part, hashes)
        wanted_outcomes = {name: j.wanted(part, hashes) for name, j in kpi_joins.items()}
        digest = store.digest(
            segment,
            lambda rs: digest_records(rs, versions.reference, thresholds),
            # before the report's window only the budgets' counts (and label rows) are read
            counts_only=status.st_mtime < rollup.start,
            rows=bool(wanted) or any(wanted_outcomes.values()),
        )
        rollup.add(digest)
        rollup.segments += 1
        join.add(part, wanted, digest.rows)
        for name, kpi_join in kpi_joins.items():
            kpi_join.add(part, wanted_outcomes[name], digest.rows)
    rollup.labeled = join.result(rollup.history_start, rollup.end)
    rollup.outcomes = {
        name: kpi_join.result(rollup.history_start, rollup.end)
        for name, kpi_join in kpi_joins.items()
    }
    rollup.digested = store.built - built_before
    return rollup


def _feedback_segments(
    logs_dir: Path, oldest: float, *, now: float, kpi: str | None = None
) -> list[FeedbackSegment]:
    """The feedback segments a label of the history can be in, their labels read lazily;
    with ``kpi``, that KPI's outcome segments instead (written as feedback records)."""
    digests = logs_dir / "digests" if kpi is None else logs_dir / "digests" / OUTCOMES / kpi
    folder = logs_dir / FEEDBACK if kpi is None else outcome_folder(logs_dir, kpi)
    columns = FeedbackColumns(digests)
    found = []
    for path in columns.listed(folder):
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        if status.st_mtime >= oldest:
            found.append(
                FeedbackSegment(
                    _segment(path, status, now=now),
                    partial(columns.columns, path),
                )
            )
    return found


def _segment(path: Path, status: os.stat_result, *, now: float) -> Segment:
    return Segment(
        segment_key(path.stem, status),
        segment_started(path),
        status.st_mtime,
        settled=status.st_mtime < now - SETTLED_S,
    )


def predictions_made(
    registry: Registry,
    logs_dir: Path,
    wanted: set[str],
    *,
    since: float,
    slo: SloConfig,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
    store: DigestStore | None = None,
) -> dict[str, tuple[str, str]]:
    """Which (model, version) answered each of the ``wanted`` prediction ids logged since
    ``since``, from the segments' digests (the ids a label can score are kept there), so a
    server can tell a label for a real prediction from one for nothing."""
    versions = _Versions(registry, dict(loaded or {}))
    store = store or digest_store(logs_dir, slo)
    thresholds = latency_thresholds_ms(slo)
    looking = np.array(sorted(wanted))
    found: dict[str, tuple[str, str]] = {}
    for segment in segments(logs_dir / PREDICTIONS, PREDICTIONS):
        if segment_modified(segment) < since:
            continue
        digest = store.digest(
            segment, lambda rs: digest_records(rs, versions.reference, thresholds)
        )
        for (_, model, version, role), rows in digest.rows.items():
            if role == "served" and len(rows.ids):
                for pid in rows.ids[np.isin(rows.ids, looking)].tolist():
                    found[str(pid)] = (model, version)
    return found


def _labeled_of(joined: Mapping[GroupKey, LabeledRows], key: VersionKey) -> LabeledRows:
    return LabeledRows.joined(
        [
            rows
            for (endpoint, model, version, _), rows in joined.items()
            if (endpoint, model, version) == key
        ]
    )


def _load(registry: Registry, model: str, version: str) -> LoadedVersion | None:
    if not model or not version.isdigit():
        return None
    try:
        return load_version(registry, registry.resolve(model, version))
    except DnnopsError:
        return None
