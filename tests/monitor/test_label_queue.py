"""The labelling queue and the label SLIs: the predictions most worth a label (nearest the
decision boundary, a random sample, or where a shadow disagrees), never one already
labelled, written to a file that goes back through ``dnnops feedback``; and label coverage
and label lag as objectives with budgets."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dnnops.config import MonitorConfig, SloConfig
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.report import build_report
from dnnops.monitor.segments.label_queue import label_queue
from dnnops.predlog.records import FeedbackRecord, PredictionRecord
from dnnops.registry.open import open_registry
from tests.conftest import CliResult

NOW = time.time()


def answered(pid: str, top: float, *, output: str = "cat", shadow_of: str | None = None) -> bytes:
    """A prediction whose top class has probability ``top`` (of three classes)."""
    rest = (1.0 - top) / 2
    return PredictionRecord(
        ts=NOW - 60,
        status=200,
        endpoint="pets",
        model="pets",
        version="2" if shadow_of else "1",
        id=None if shadow_of else pid,
        shadow=shadow_of is not None,
        shadow_of=shadow_of,
        inputs={"weight": 4.2, "colour": "grey"},
        output=output,
        probabilities=[top, rest, rest],
    ).encode()


def write_log(logs: Path, predictions: list[bytes], labels: list[tuple[str, str]]) -> None:
    logger = PredictionLogger(logs).start()
    try:
        logger.predictions.append(predictions)
        logger.feedback.append([FeedbackRecord(p, lab, NOW - 30).encode() for p, lab in labels])
    finally:
        logger.close()


def test_the_queue_lists_the_least_certain_unlabelled_predictions(tmp_path: Path) -> None:
    confidences = {"p1": 0.9, "p2": 0.4, "p3": 0.35, "p4": 0.6, "p5": 0.34}
    write_log(
        tmp_path,
        [answered(pid, top) for pid, top in confidences.items()],
        labels=[("p5", "cat")],  # already labelled: never asked again
    )
    since = NOW - 3600
    queue = label_queue(tmp_path, "pets", budget=2, strategy="uncertainty", since=since)
    assert [i.prediction_id for i in queue] == ["p3", "p2"]
    assert queue[0].inputs == {"weight": 4.2, "colour": "grey"} and "margin" in queue[0].why
    sample = label_queue(tmp_path, "pets", budget=10, strategy="random", since=since)
    assert sorted(i.prediction_id for i in sample) == ["p1", "p2", "p3", "p4"]
    assert label_queue(tmp_path, "pets", budget=5, strategy="uncertainty", since=NOW) == []
    with pytest.raises(UsageError, match="no shadow of pets"):
        label_queue(tmp_path, "pets", budget=5, strategy="disagreement", since=since)
    with pytest.raises(UsageError, match="--strategy must be one of"):
        label_queue(tmp_path, "pets", budget=5, strategy="loudest", since=since)


def test_disagreement_lists_where_a_shadow_answered_otherwise(tmp_path: Path) -> None:
    write_log(
        tmp_path,
        [
            answered("p1", 0.9),
            answered("p1", 0.8, shadow_of="p1"),  # agrees
            answered("p2", 0.7),
            answered("p2", 0.6, output="dog", shadow_of="p2"),  # disagrees
        ],
        labels=[],
    )
    [item] = label_queue(tmp_path, "pets", budget=5, strategy="disagreement", since=NOW - 3600)
    assert item.prediction_id == "p2" and "v2 'dog'" in item.why


def test_the_queue_file_goes_back_through_feedback(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    logs = resolve_home(home).logs_dir
    write_log(logs, [answered(f"p{i}", 0.4 + i / 20) for i in range(6)], labels=[])
    out = tmp_path / "queue.csv"
    queued = cli("labels", "queue", "pets", "--budget", "3", "--out", str(out))
    assert queued.code == 0, queued.err
    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["prediction_id"] for r in rows] == ["p0", "p1", "p2"]
    assert all(r["label"] == "" for r in rows) and '"colour":"grey"' in rows[0]["inputs"]
    for row in rows:
        row["label"] = "dog"
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert cli("feedback", str(out)).code == 0
    after = cli("labels", "queue", "pets", "--budget", "10", "--json").json()
    assert [i["prediction_id"] for i in after["items"]] == ["p3", "p4", "p5"]
    refused = cli("labels", "queue", "pets", "--budget", "3", "--out", str(tmp_path / "q.txt"))
    assert refused.code != 0 and ".csv or .jsonl" in refused.err


def test_label_coverage_and_lag_are_objectives_with_budgets(tmp_path: Path) -> None:
    home = resolve_home(tmp_path / "home")
    write_log(
        home.logs_dir,
        [answered(f"p{i}", 0.9) for i in range(10)],
        labels=[("p0", "cat"), ("p1", "cat"), ("p2", "dog"), ("p3", "cat")],
    )
    slo = SloConfig.model_validate(
        {
            "objectives": [
                {"name": "covered", "kind": "label_coverage", "target": 0.5},
                {"name": "prompt", "kind": "label_lag", "target": 0.9, "threshold": "10s"},
            ]
        }
    )
    report = build_report(
        open_registry(home), home.logs_dir, 3600, monitor=MonitorConfig(), slo=slo
    )
    covered, prompt = report.versions[0].slo
    assert (covered.current, covered.events, covered.met) == (0.4, 10, False)
    assert (prompt.current, prompt.events, prompt.met) == (0.0, 4, False), "30 s after: late"
    with pytest.raises(ValueError, match="needs a threshold"):
        SloConfig.model_validate(
            {"objectives": [{"name": "x", "kind": "label_lag", "target": 0.9}]}
        )
