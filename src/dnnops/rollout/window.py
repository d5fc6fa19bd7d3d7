"""What each side of a rollout did in a check window, read from the prediction log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.config import KpiConfig
from dnnops.evaluate.calibration import Calibrator
from dnnops.monitor.judgements.kpis import kpi_values
from dnnops.monitor.segments.digest import EstimateSums, Stats, estimate_of, stats_of
from dnnops.monitor.segments.scoring import score
from dnnops.predlog.reader import PREDICTIONS, outcome_folder, read_labels, read_predictions
from dnnops.predlog.records import PredictionRecord
from dnnops.rollout.policy import ArmStats


def arm_stats(
    records: Iterable[PredictionRecord],
    labels: Mapping[str, Any],
    endpoint: str,
    *,
    version: str,
    shadow: bool,
    calibrator: Calibrator | None = None,
    outcomes: Mapping[str, tuple[KpiConfig, Mapping[str, Any]]] | None = None,
) -> ArmStats:
    """Stats of ``version`` on ``endpoint`` from prediction records (already windowed);
    ``shadow`` picks its mirrored records instead of answered ones. ``labels`` maps a
    prediction id to its ground truth. The counts, the success rate and the p99 come from
    the digest's ``stats_of``, as in the report; labels score as in the time series."""
    mine = [
        r for r in records if r.endpoint == endpoint and r.version == version and r.shadow == shadow
    ]
    stats = stats_of(mine, None, ()) if mine else Stats()
    labeled = correct = 0
    absolute_errors: list[float] = []
    for record in mine:
        scored = score(record, labels.get(record.label_id))
        if scored is None:
            continue
        if scored.kind == "class":
            labeled += 1
            correct += int(scored.value)
        else:
            absolute_errors.append(abs(scored.value))
    latencies = np.array(
        [r.latency_ms for r in mine if r.answered and r.latency_ms is not None],
        dtype="float64",
    )
    return ArmStats(
        version=version,
        requests=stats.predictions + stats.server_errors,
        server_errors=stats.server_errors,
        latency_p99_ms=stats.latency.quantile(0.99),
        class_counts=dict(stats.classes),
        labeled=labeled,
        correct=correct,
        latencies_ms=tuple(latencies[np.isfinite(latencies)].tolist()),
        absolute_errors=tuple(absolute_errors),
        estimate=estimate_of(mine, calibrator) if calibrator is not None else EstimateSums(),
        outcomes={
            name: tuple(kpi_values(_outcome_values(mine, sent), kpi, stats.predictions).tolist())
            for name, (kpi, sent) in (outcomes or {}).items()
        },
    )


def _outcome_values(records: Sequence[PredictionRecord], sent: Mapping[str, Any]) -> np.ndarray:
    """The outcome sent for each answered prediction of ``records`` (NaN: none yet)."""
    found = [sent.get(r.label_id) for r in records if r.answered]
    return np.array([v if isinstance(v, int | float) else np.nan for v in found], "float64")


def window_records(logs_dir: Path, start: float, end: float) -> list[PredictionRecord]:
    return [
        r for r in read_predictions(logs_dir / PREDICTIONS, since=start) if start <= r.ts <= end
    ]


def window_labels(logs_dir: Path, start: float) -> dict[str, Any]:
    """Labels that arrived since ``start`` (a label cannot predate its prediction)."""
    return read_labels(logs_dir / "feedback", since=start)


def window_outcomes(
    logs_dir: Path, start: float, kpis: Sequence[KpiConfig]
) -> dict[str, tuple[KpiConfig, dict[str, Any]]]:
    """Each KPI's outcomes that arrived since ``start``, by prediction id (the newest wins)."""
    return {
        kpi.name: (kpi, read_labels(outcome_folder(logs_dir, kpi.name), since=start))
        for kpi in kpis
    }


def compare_window(
    logs_dir: Path,
    endpoint: str,
    candidate: str,
    *,
    stable: str,
    shadow: bool,
    start: float,
    end: float,
    calibrators: Mapping[str, Calibrator | None] | None = None,
    kpis: Sequence[KpiConfig] = (),
) -> tuple[ArmStats, ArmStats]:
    """Both sides over the same window. When the stable version took no traffic in it
    (blue-green runs the candidate at 100%), the stable side is read from the window of
    the same length just before."""
    records: Sequence[PredictionRecord] = window_records(logs_dir, start, end)
    labels = window_labels(logs_dir, start)
    outcomes = window_outcomes(logs_dir, start, kpis)
    found = calibrators or {}
    ours = arm_stats(
        records, labels, endpoint, version=candidate, shadow=shadow,
        calibrator=found.get(candidate), outcomes=outcomes,
    )  # fmt: skip
    theirs = arm_stats(
        records, labels, endpoint, version=stable, shadow=False,
        calibrator=found.get(stable), outcomes=outcomes,
    )  # fmt: skip
    if theirs.requests == 0:
        before = start - (end - start)
        earlier = window_records(logs_dir, before, start)
        theirs = arm_stats(
            earlier,
            window_labels(logs_dir, before),
            endpoint,
            version=stable,
            shadow=False,
            calibrator=found.get(stable),
            outcomes=window_outcomes(logs_dir, before, kpis),
        )
    return ours, theirs
