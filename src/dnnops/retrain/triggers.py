"""When to retrain, as a pure function of what monitoring observed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dnnops.config import RetrainConfig


@dataclass(frozen=True)
class Observed:
    """What the served production version did over ``retrain.drift_window``."""

    drift_share: float | None
    """Share of features that drifted (None: no inputs logged, or no reference profile)."""
    accuracy: float | None
    """Accuracy on the labels that arrived (None: no labels)."""
    new_labels: int
    """Labeled predictions since the production version was registered."""
    seconds_since_training: float | None
    mae: float | None = None
    """A regressor's mean absolute error on the labels that arrived (None: no labels)."""
    estimated_accuracy: float | None = None
    """Accuracy as calibrated confidence estimates it, no label needed (None: no estimate,
    or an unreliable one: the inputs left the training support)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    retrain: bool
    fired: list[str]
    """Every trigger that fired, in words."""
    blocked: str | None = None
    """Why fired triggers do not retrain yet (too few new labels)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fired_triggers(observed: Observed, config: RetrainConfig) -> list[str]:
    fired = []
    drift, accuracy = observed.drift_share, observed.accuracy
    if config.drift_share is not None and drift is not None and drift >= config.drift_share:
        fired.append(f"drift: {drift:.0%} of features drifted (threshold {config.drift_share:.0%})")
    below = config.accuracy_below
    if below is not None and accuracy is not None and accuracy < below:
        fired.append(f"accuracy {accuracy:.1%} on labels is below {below:.1%}")
    estimated, floor = observed.estimated_accuracy, config.estimated_accuracy_below
    if floor is not None and estimated is not None and estimated < floor:
        fired.append(f"estimated accuracy {estimated:.1%} (no labels needed) is below {floor:.1%}")
    above = config.mae_above
    if above is not None and observed.mae is not None and observed.mae > above:
        fired.append(f"MAE {observed.mae:.4g} on labels is above {above:.4g}")
    age = observed.seconds_since_training
    if config.every is not None and age is not None and age >= config.every:
        fired.append(f"schedule: last trained {age:.0f} s ago (retrain.every {config.every:.0f} s)")
    return fired


def decide(observed: Observed, config: RetrainConfig) -> Decision:
    """Retrain when a trigger fired and enough new labels arrived to learn from (without
    them the challenger would learn the same data as the champion)."""
    fired = fired_triggers(observed, config)
    if not fired:
        return Decision(False, [])
    if observed.new_labels < config.min_new_labels:
        blocked = (
            f"{observed.new_labels} new labels; retrain.min_new_labels is {config.min_new_labels}"
        )
        return Decision(False, fired, blocked)
    return Decision(True, fired)
