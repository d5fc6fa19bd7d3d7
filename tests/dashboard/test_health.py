"""The health score is honest: a part without data is unknown and left out, never full
marks; a regressor's quality is its MAE against its test MAE; a version that failed its
gates cannot score 100. Values, not presence."""

from __future__ import annotations

from dataclasses import replace

from dnnops.dashboard.data import FAILED_GATES_CAP, health_score
from dnnops.dashboard.document import Health
from dnnops.monitor.judgements.report_types import (
    ConfidenceShift,
    ObjectiveStatus,
    VersionSection,
)
from dnnops.monitor.judgements.sli import Quality, VersionSlis
from dnnops.monitor.stats.dataset_drift import DatasetDrift

SLIS = VersionSlis("m", "m", "3", 500, 10, 0.98, 0.0, 5.0, 1.0, *[1.0] * 6, 0.9, [], 1.0)


def _objective(met: bool | None) -> ObjectiveStatus:
    return ObjectiveStatus("latency", "latency", 0.99, 3600.0, None, met, None, 0)


def _quality(**metrics: float) -> Quality:
    return Quality(100, metrics, [], 1.0, 2.0, [])


def test_a_version_without_any_data_has_no_score_and_says_which_parts_are_unknown() -> None:
    health = health_score([VersionSection(SLIS)], current="3")
    assert health == Health(None, {"slo": None, "drift": None, "quality": None})


def test_unknown_parts_are_left_out_not_given_full_marks() -> None:
    half_met = VersionSection(SLIS, slo=[_objective(True), _objective(False), _objective(None)])
    health = health_score([half_met], current="3")
    assert health.parts == {"slo": 0.5, "drift": None, "quality": None}
    assert health.score == 50  # one met of the two with data; drift and quality unknown
    drifted = replace(half_met, drift=DatasetDrift([], 0.25, 0.5, False, rows=400))
    assert health_score([drifted], current="3").score == round(100 * (40 * 0.5 + 30 * 0.75) / 70)


def test_quality_reads_accuracy_mae_or_confidence_against_the_versions_own_test() -> None:
    classifier = VersionSection(SLIS, quality=_quality(accuracy=0.72), baseline_accuracy=0.9)
    assert health_score([classifier], current="3").parts["quality"] == 0.72 / 0.9
    regressor = VersionSection(SLIS, quality=_quality(mae=4.0), baseline_mae=3.0)
    assert health_score([regressor], current="3").score == 75  # 3/4 of its test error
    better = replace(regressor, quality=_quality(mae=2.0))
    assert health_score([better], current="3").score == 100
    before_labels = VersionSection(SLIS, confidence=ConfidenceShift(0.6, 0.8, -0.2))
    assert health_score([before_labels], current="3").score == 75


def test_a_version_that_failed_its_gates_cannot_score_100() -> None:
    perfect = VersionSection(
        SLIS, slo=[_objective(True)], quality=_quality(accuracy=0.9), baseline_accuracy=0.9
    )
    assert health_score([perfect], current="3").score == 100
    failed = health_score([replace(perfect, gates_passed=False)], current="3")
    assert failed.score == FAILED_GATES_CAP and failed.capped is not None
