"""``dnnops replay NAME@CANDIDATE``: the production inputs the log kept over a window, run
offline through the candidate and the champion by the batch predictor (``predict_chunk``,
never the server), compared with each other and with the labels and outcomes that
arrived (``replay_report``). The report is kept under ``<home>/replays/`` and recorded in
the audit log, where ``rollout.replay: required`` looks for a passing one before a
canary starts.

Only what the log kept is replayed: a row whose inputs sampling left out
(``serve.log_inputs``) is skipped, a sensitive feature the log hashed or dropped is
replayed as missing (and named), and an image model's log holds digests, not images.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dnnops.batch.predict import BatchResult, predict_chunk
from dnnops.batch.replay_report import ReplayInputs, ReplayReport, Side, compare
from dnnops.config import KpiConfig, RolloutConfig, ServeConfig
from dnnops.data.policy import InputPolicy
from dnnops.errors import DataError, ModelError, UsageError
from dnnops.home import Home
from dnnops.inference.predictor import Predictor
from dnnops.predlog.reader import (
    FEEDBACK,
    PREDICTIONS,
    outcome_folder,
    read_labels,
    read_predictions,
)
from dnnops.predlog.records import PredictionRecord
from dnnops.predlog.redaction import HASH_PREFIX
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import Registry, VersionRecord
from dnnops.rollout.begin import REPLAY

REPLAYS = "replays"
"""``<home>/replays/``: each replay's report as JSON."""
CHUNK_ROWS = 512


@dataclass(frozen=True)
class ReplayRequest:
    model: str
    candidate: str
    against: str = "production"
    since_s: float = 86400.0
    policy: RolloutConfig = field(default_factory=RolloutConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    kpis: Sequence[KpiConfig] = ()
    group: str | None = None
    """``data.group``: a column the log keeps, whose values are segments of the report."""


def replay(
    registry: Registry, home: Home, request: ReplayRequest, *, now: float | None = None
) -> ReplayReport:
    """Run the replay, keep its report and record it in the audit log."""
    moment = time.time() if now is None else now
    candidate = registry.resolve(request.model, request.candidate)
    champion = registry.resolve(request.model, request.against)
    if candidate.version == champion.version:
        raise UsageError(
            f"{request.model}@{candidate.version} is the version it would be compared with; "
            "name another with --against"
        )
    ours, theirs = load_version(registry, candidate), load_version(registry, champion)
    if ours.schema.medium is not None and ours.schema.medium.image is not None:
        raise UsageError(
            "an image model's log keeps digests and previews, not the images: there is "
            "nothing to replay; judge the candidate with a canary or a shadow"
        )
    start = moment - request.since_s
    records = _served_by(home.logs_dir, champion, start=start, end=moment)
    rows, skipped = _rows(records, theirs)
    if not rows:
        raise UsageError(
            f"no logged inputs of {request.model}@{champion.version} since "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(start))} ({_said(skipped)}); "
            "widen --since, or log inputs (serve.log_inputs)"
        )
    frame = pd.DataFrame([inputs for _, inputs in rows], columns=theirs.schema.feature_names)
    redacted = sorted(theirs.schema.sensitive_names)
    for name in redacted:  # what the log kept of them is a hash, or nothing
        frame[name] = None
    policy = InputPolicy.of(request.serve)
    candidate_side = _predict(ours, frame, policy)
    champion_side = _predict(theirs, frame, policy)
    kept = [r for (r, _) in rows]
    inputs = ReplayInputs(
        ids=[r.label_id for r in kept],
        logged_answers=[r.output for r in kept],
        labels=read_labels(home.logs_dir / FEEDBACK, since=start),
        outcomes={
            k.name: read_labels(outcome_folder(home.logs_dir, k.name), since=start)
            for k in request.kpis
        },
        groups=_groups(kept, request.group),
    )
    numbers, gates = compare(
        candidate_side, champion_side, inputs,
        regression=ours.is_regression, policy=request.policy, kpis=request.kpis,
    )  # fmt: skip
    failed = [g for g in gates if g.outcome == "fail"]
    report = ReplayReport(
        model=request.model,
        candidate=candidate.version,
        champion=champion.version,
        window_start=start,
        window_end=moment,
        rows=len(kept),
        skipped=dict(skipped),
        redacted=redacted,
        gates=[g.to_dict() for g in gates],
        passed=not failed,
        message=(
            "; ".join(g.message for g in failed)
            if failed
            else f"passes the canary's gates on {len(kept)} logged rows"
        ),
        task="regression" if ours.is_regression else "classification",
        **numbers,
    )
    _keep(registry, home, report)
    return report


def _served_by(
    logs_dir: Path, champion: VersionRecord, *, start: float, end: float
) -> list[PredictionRecord]:
    """The answered, non-shadow records of ``champion`` in the window."""
    return [
        r
        for r in read_predictions(logs_dir / PREDICTIONS, since=start)
        if start <= r.ts <= end
        and r.answered
        and not r.shadow
        and r.model == champion.model
        and r.version == str(champion.version)
    ]


def _rows(
    records: list[PredictionRecord], loaded: LoadedVersion
) -> tuple[list[tuple[PredictionRecord, list[Any]]], Counter[str]]:
    """Each record's inputs in schema order; the records without usable inputs counted."""
    names = loaded.schema.feature_names
    sensitive = loaded.schema.sensitive_names
    rows = []
    skipped: Counter[str] = Counter()
    for record in records:
        found = record.inputs
        if found is None:
            skipped["inputs not logged (serve.log_inputs)"] += 1
            continue
        if isinstance(found, dict):
            values = [None if n in sensitive else _plain(found.get(n)) for n in names]
        elif isinstance(found, list) and len(found) == len(names):
            values = [_plain(v) for v in found]
        else:
            skipped["inputs not in the version's schema"] += 1
            continue
        rows.append((record, values))
    return rows, skipped


def _plain(value: Any) -> Any:
    """A logged value as the model reads it: a redacted hash reads as missing."""
    return None if isinstance(value, str) and value.startswith(HASH_PREFIX) else value


def _predict(loaded: LoadedVersion, frame: pd.DataFrame, policy: InputPolicy) -> Side:
    """The version's answers by the batch predictor, chunk by chunk, each chunk timed."""
    predictor = Predictor.create(loaded, 1)
    answers: list[Any] = []
    timings: list[float] = []
    invalid = 0
    for first in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[first : first + CHUNK_ROWS]
        started = time.perf_counter()
        try:
            answer = predict_chunk(
                loaded, chunk, predictor, policy=policy, prefix="replay", result=BatchResult()
            )
        except ModelError:  # NaN or infinity: these rows fail, as the server's 500s
            invalid += len(chunk)
            answers.extend([None] * len(chunk))
            continue
        except DataError as exc:
            raise UsageError(
                f"v{loaded.record.version} refuses the logged inputs ({exc}); its schema or "
                "input policy differs from the version that served them"
            ) from None
        timings.append((time.perf_counter() - started) * 1000 / len(chunk))
        answers.extend(answer.labels.tolist())
    dtype = "float64" if loaded.is_regression else object
    kept = np.array(answers, dtype=object)
    if loaded.is_regression:
        kept = np.array([np.nan if a is None else a for a in answers], dtype=dtype)
    return Side(loaded.record.version, kept, timings, invalid)


def _groups(records: list[PredictionRecord], column: str | None) -> list[Any] | None:
    if column is None:
        return None
    return [r.inputs.get(column) if isinstance(r.inputs, dict) else None for r in records]


def _said(skipped: Counter[str]) -> str:
    return ", ".join(f"{count} {why}" for why, count in skipped.items()) or "none logged"


def _keep(registry: Registry, home: Home, report: ReplayReport) -> Path:
    folder = home.root / REPLAYS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(report.window_end))
    path = folder / f"{report.model}-v{report.candidate}-{stamp}.json"
    path.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    registry.audit(
        REPLAY,
        report.model,
        {
            "version": report.candidate,
            "against": report.champion,
            "passed": report.passed,
            "rows": report.rows,
            "agreement": report.agreement,
            "message": report.message,
            "report": str(path),
        },
    )
    return path
