"""Retraining triggers as a pure function: each trigger, and the new-labels precondition."""

from __future__ import annotations

from dnnops.config import RetrainConfig
from dnnops.retrain.triggers import Observed, decide, fired_triggers

CONFIG = RetrainConfig(drift_share=0.5, accuracy_below=0.9, every=86400.0, min_new_labels=100)


def observed(
    drift: float | None = 0.1, accuracy: float | None = 0.95, labels: int = 500, age: float = 60.0
) -> Observed:
    return Observed(drift, accuracy, labels, age)


def test_nothing_fires_on_a_healthy_model() -> None:
    assert fired_triggers(observed(), CONFIG) == []
    assert not decide(observed(), CONFIG).retrain


def test_each_trigger_fires_on_its_own() -> None:
    assert fired_triggers(observed(drift=0.5), CONFIG)[0].startswith("drift: 50%")
    assert fired_triggers(observed(accuracy=0.85), CONFIG)[0].startswith("accuracy 85.0%")
    assert fired_triggers(observed(age=90000.0), CONFIG)[0].startswith("schedule:")
    assert len(fired_triggers(observed(drift=0.9, accuracy=0.5, age=1e6), CONFIG)) == 3


def test_unknown_observations_and_switched_off_triggers_do_not_fire() -> None:
    assert fired_triggers(observed(drift=None, accuracy=None), CONFIG) == []
    off = RetrainConfig(drift_share=None, accuracy_below=None, every=None)
    assert fired_triggers(observed(drift=1.0, accuracy=0.0, age=1e9), off) == []


def test_a_fired_trigger_waits_for_enough_new_labels() -> None:
    blocked = decide(observed(drift=0.8, labels=20), CONFIG)
    assert not blocked.retrain
    assert blocked.fired and blocked.blocked is not None
    assert "min_new_labels is 100" in blocked.blocked
    assert decide(observed(drift=0.8, labels=100), CONFIG).retrain


def test_an_estimated_accuracy_fires_before_any_label() -> None:
    config = RetrainConfig(drift_share=None, estimated_accuracy_below=0.9, min_new_labels=100)
    unlabeled = Observed(0.0, None, 0, 60.0, estimated_accuracy=0.82)
    decision = decide(unlabeled, config)
    assert decision.fired == ["estimated accuracy 82.0% (no labels needed) is below 90.0%"]
    assert not decision.retrain and decision.blocked, "it says so; training waits for labels"
    assert fired_triggers(Observed(0.0, None, 0, 60.0, estimated_accuracy=None), config) == []
