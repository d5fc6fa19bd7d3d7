"""Register a tiered version: registered classifiers (fast first, most accurate last) made
into one version that answers from the first tier and escalates the rows it is unsure of.

The tiered version is a version like any other (it can be served, evaluated, rolled out
and rolled back): it holds copies of its members' files (the artifact store keeps one copy
of equal bytes), the escalation thresholds chosen on held-out rows (``tiers.json``), and a
calibrator and an evaluation of its own, since its answers are neither tier's alone.
Moving a member's alias later changes nothing in it: a version never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.data.prepare import label_indices, load_dataset
from dnnops.data.preprocess import apply_preprocessing
from dnnops.data.sources import load_source
from dnnops.data.split import split_indices
from dnnops.errors import DnnopsError, UsageError
from dnnops.evaluate.calibration import fit_calibrator
from dnnops.evaluate.metrics import softmax
from dnnops.evaluate.report import evaluate_predictions
from dnnops.evaluate.tiers import (
    TierMember,
    TierPlan,
    choose_thresholds,
    run_cascade,
    validation_of,
)
from dnnops.registry.loader import (
    CALIBRATION,
    EXPLANATIONS,
    GRAPH_FILES,
    TIERS,
    LoadedVersion,
    load_version,
    make_predictor,
    version_config,
)
from dnnops.registry.versions import Registration, Registry, VersionRecord

DEFAULT_MAX_ACCURACY_LOSS = 0.001
"""0.1 point of accuracy: what the cascade may give up against its last tier alone."""
NOT_COPIED = {CALIBRATION, EXPLANATIONS, "evaluation.json", TIERS}
"""The first tier's files that describe it alone: the tiered version gets its own."""
REGISTRY_FIELDS = {
    "format", "model", "version", "created_at", "source", "run_id", "parent_version",
    "files", "signature", "metrics", "gates", "gates_passed",
}  # fmt: skip


@dataclass(frozen=True)
class HeldOut:
    """Labeled rows, preprocessed as every tier expects."""

    x: np.ndarray
    y: np.ndarray
    source: str


def register_tiers(
    registry: Registry,
    name: str,
    members: list[VersionRecord],
    *,
    data: Path | None = None,
    max_accuracy_loss: float = DEFAULT_MAX_ACCURACY_LOSS,
) -> VersionRecord:
    """Choose the thresholds on held-out rows (``data``, else the first tier's validation
    split) and register the tiered version as the next version of ``name``."""
    if len(members) < 2:
        raise UsageError("tiers need at least two versions, fastest first: --tiers a@1,b@2")
    if not 0.0 <= max_accuracy_loss < 1.0:
        raise UsageError(f"--max-accuracy-loss {max_accuracy_loss} must be in [0, 1)")
    loaded = [load_version(registry, record) for record in members]
    _check_compatible(loaded)
    choose_on, test_on = held_out_rows(registry, loaded[0], data)
    predictors = [make_predictor(version, threads=1) for version in loaded]
    confidences, right = _judged(loaded, predictors, choose_on)
    thresholds = choose_thresholds(confidences, right, max_accuracy_loss)
    plan = TierPlan(
        members=[
            TierMember(
                model=version.record.model,
                version=version.record.version,
                prefix="" if index == 0 else f"tier{index}.",
                spec=version.manifest.spec,
                calibrator=version.calibrator,
                threshold=thresholds[index] if index < len(thresholds) else None,
            )
            for index, version in enumerate(loaded)
        ],
        max_accuracy_loss=max_accuracy_loss,
        chosen_on=validation_of(confidences, right, thresholds, source=choose_on.source),
        tested_on=(
            validation_of(*_judged(loaded, predictors, test_on), thresholds, source=test_on.source)
            if test_on is not None
            else None
        ),
    )
    registration = _registration(
        registry,
        name,
        loaded,
        plan=plan,
        predictors=predictors,
        choose_on=choose_on,
        test_on=test_on,
    )
    return registry.register(registration)


def _check_compatible(loaded: list[LoadedVersion]) -> None:
    """Tiers answer the same question from the same inputs: one schema, one preprocessing
    (a row is transformed once and every tier reads it), one set of classes."""
    first = loaded[0]
    for version in loaded:
        ref = version.record.ref
        if version.is_regression:
            raise UsageError(f"{ref} is a regressor; tiers escalate on a classifier's confidence")
        if version.manifest.tiers:
            raise UsageError(f"{ref} is itself tiered; list its members instead")
        if version.classes != first.classes:
            raise UsageError(
                f"{ref} predicts {version.classes}, {first.record.ref} {first.classes}: "
                "tiers must share their classes"
            )
        for shared in ("schema.json", "preprocessing.json"):
            digest = version.manifest.digest(shared)
            if digest != first.manifest.digest(shared):
                raise UsageError(
                    f"{ref} and {first.record.ref} differ in {shared}: tiers must read the same "
                    "inputs the same way; train them on one data.source with one "
                    "data.preprocessing and data.split"
                )
    for version in loaded[:-1]:
        if version.calibrator is None:
            raise UsageError(
                f"{version.record.ref} has no calibrator (calibration.json), so its confidence "
                "cannot decide escalation; register it again with dnnops >= this version"
            )


def held_out_rows(
    registry: Registry, first: LoadedVersion, data: Path | None
) -> tuple[HeldOut, HeldOut | None]:
    """The rows to choose thresholds on and, when known, test rows to report them on:
    ``data`` (all of it, no test rows), else the first tier's own validation and test
    splits, rebuilt from its stored project file."""
    target = first.schema.target.name if first.schema.target else "target"
    if data is not None:
        dataset = load_source(str(data), target, drop=first.schema.ignored)
        x = apply_preprocessing(first.preprocessor, dataset.inputs)
        return HeldOut(x, label_indices(dataset.target, first.schema), str(data)), None
    config = version_config(
        registry, first, missing="pass --data FILE with labeled rows to choose the thresholds on"
    )
    try:
        dataset = load_dataset(config.data)
    except (OSError, DnnopsError) as exc:
        raise UsageError(
            f"cannot read {config.data.source}, the data {first.record.ref} was trained on "
            f"({exc}); pass --data FILE with labeled rows"
        ) from None
    split = split_indices(len(dataset), config.data.split, dataset.target)

    def part(indices: np.ndarray, which: str) -> HeldOut:
        rows = dataset.take(indices)
        x = apply_preprocessing(first.preprocessor, rows.inputs)
        source = f"{which} split of {config.data.source}"
        return HeldOut(x, label_indices(rows.target, first.schema), source)

    return part(split.valid, "validation"), part(split.test, "test") if len(split.test) else None


def _judged(
    loaded: list[LoadedVersion], predictors: list[Any], rows: HeldOut
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each tier's calibrated confidence on the rows, and whether it was right."""
    confidences, right = [], []
    for version, predict in zip(loaded, predictors, strict=True):
        probabilities = softmax(predict(rows.x).astype("float64"))
        calibrator = version.calibrator
        top = probabilities.max(axis=1)
        confidences.append(calibrator.confidence(probabilities) if calibrator else top)
        right.append(probabilities.argmax(axis=1) == rows.y)
    return confidences, right


def _registration(
    registry: Registry,
    name: str,
    loaded: list[LoadedVersion],
    *,
    plan: TierPlan,
    predictors: list[Any],
    choose_on: HeldOut,
    test_on: HeldOut | None,
) -> Registration:
    first = loaded[0]
    files = {
        file: registry.file(first.record, first.manifest, file)
        for file in first.manifest.files
        if file not in NOT_COPIED
    }
    for member, version in zip(plan.members[1:], loaded[1:], strict=True):
        for graph in GRAPH_FILES.values():
            if version.manifest.has(graph):
                files[member.prefix + graph] = registry.file(
                    version.record, version.manifest, graph
                )
    files[TIERS] = plan.model_dump_json(indent=2).encode()

    confidences = [member.confidence for member in plan.members]

    def cascade(x: np.ndarray) -> np.ndarray:
        return run_cascade(predictors, confidences, plan.thresholds, x=x).logits

    chosen_on = plan.chosen_on
    metrics: dict[str, float] = {
        "tier_escalation_rate": 1.0 - chosen_on.shares[0],
        "tier_validation_accuracy": chosen_on.accuracy,
    }
    if test_on is not None:
        report = evaluate_predictions(cascade, test_on.x, test_on.y, classes=first.classes)
        files["evaluation.json"] = report.model_dump_json(indent=2).encode()
        metrics.update(report.metrics)
    # its own calibrator, on the rows the thresholds were chosen on (as a trained version's
    # is fitted on its validation split): its confidence is neither tier's alone
    calibrator = fit_calibrator(softmax(cascade(choose_on.x).astype("float64")), choose_on.y)
    if calibrator is not None:
        files[CALIBRATION] = calibrator.model_dump_json(indent=2).encode()
    manifest = {k: v for k, v in first.manifest.items() if k not in REGISTRY_FIELDS}
    manifest["tiers"] = [m.ref for m in plan.members]
    manifest["metrics"] = metrics
    return Registration(
        model=name,
        source="tiered",
        files=files,
        manifest=manifest,
        metrics=metrics,
        gates_passed=None,
    )
