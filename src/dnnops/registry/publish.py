"""Turn a trained (or imported) model into a registered, evaluated, self-contained version.

Evaluation runs on the ONNX graph, the thing that will serve. Every model is registered;
a trained one becomes ``candidate`` only when no gate fails, and the first such version
of a model also becomes ``production``. An imported version moves no alias on its own:
``models import --alias production`` asks for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from dnnops.config import EvaluateConfig
from dnnops.data.dataset import Inputs
from dnnops.data.embedding_profile import EmbeddingProfile
from dnnops.data.preprocess import Preprocessor, apply_preprocessing
from dnnops.data.profile import Profile, numeric_profile
from dnnops.data.schema import Schema
from dnnops.errors import DnnopsError
from dnnops.evaluate.agreement import AgreementPanel, LabeledFrame, Scaling, fit_panel
from dnnops.evaluate.calibration import MIN_ROWS, Calibrator, fit_calibrator
from dnnops.evaluate.decision import Decision, Rule, choose_threshold
from dnnops.evaluate.explain import ExplanationReference, choose_explainer, importance_profile
from dnnops.evaluate.metrics import classification_metrics, regression_metrics, softmax
from dnnops.evaluate.report import (
    EvaluationReport,
    apply_gates,
    compare_champion,
    evaluate_predictions,
    evaluate_regression,
    with_baselines,
)
from dnnops.models.build import ModelSpec
from dnnops.registry.compatibility import champion_mismatch
from dnnops.registry.export import INPUT, OUTPUT, quantize_int8
from dnnops.registry.loader import (
    AGREEMENT,
    CALIBRATION,
    EMBEDDINGS,
    EXPLANATIONS,
    load_version,
    make_predictor,
)
from dnnops.registry.onnx_runner import OnnxRunner
from dnnops.registry.versions import Registration, Registry, VersionNotFound, VersionRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationData:
    """Held-out rows: preprocessed ``x``, class indices ``y``, the raw inputs (so a champion
    with different preprocessing can be judged on the same rows) and optional groups."""

    x: np.ndarray
    y: np.ndarray
    raw: Inputs
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class ThresholdRequest:
    """Tune a binary classifier's threshold for ``rule`` on class ``positive``."""

    rule: Rule
    positive: int
    costs: tuple[float, float] = (1.0, 1.0)
    """(a false positive's, a false negative's), for the ``cost`` rule."""


@dataclass(frozen=True)
class Candidate:
    name: str
    source: Literal["trained", "imported"]
    onnx: bytes
    schema: Schema
    preprocessor: Preprocessor
    classes: list[int | str]
    weights: bytes | None = None
    spec: ModelSpec | None = None
    profile: Profile | None = None
    config_yaml: bytes | None = None
    run_id: str | None = None
    dataset: dict[str, Any] | None = None
    onnx_parity: float | None = None
    evaluation: EvaluationData | None = None
    calibration: EvaluationData | None = None
    """Held-out rows the confidence calibrator is fitted on (the validation split; the
    evaluation rows when there is none, as for an imported model)."""
    input_name: str = INPUT
    """The v2 input tensor's name; an imported graph keeps its own."""
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    """Baselines' scores on the evaluation rows (``evaluate.baseline``), by name."""
    threshold: ThresholdRequest | None = None
    """A binary classifier's threshold to tune on ``calibration`` (``train.threshold``)."""
    started_from: dict[str, Any] | None = None
    """Where its weights started (``train.init_from``: origin, digest, tensors loaded)."""
    embedding: EmbeddingProfile | None = None
    """An image or text model's reference embeddings (its graph answers ``embedding``)."""
    training: EvaluationData | None = None
    """The training split: what a classifier's agreement panel is fitted on."""

    @property
    def is_regression(self) -> bool:
        return self.schema.target is not None and self.schema.target.is_regression


@dataclass(frozen=True)
class Published:
    record: VersionRecord
    report: EvaluationReport | None
    aliases_moved: list[str] = field(default_factory=list)


def publish(
    registry: Registry, candidate: Candidate, evaluate: EvaluateConfig, *, int8: bool = False
) -> Published:
    """Evaluate, gate, compare with the champion, register and alias ``candidate``."""
    runner = OnnxRunner(candidate.onnx)
    decision = _decision(candidate, runner)
    report = None
    if candidate.evaluation is not None:
        data = candidate.evaluation
        if candidate.is_regression:
            report = evaluate_regression(runner, data.x, data.y, noise_std=evaluate.noise_std)
            candidate = _with_predicted_values(candidate, runner(data.x))
        else:
            report = evaluate_predictions(
                runner,
                data.x,
                data.y,
                classes=candidate.classes,
                groups=data.groups,
                noise_std=evaluate.noise_std,
                decision=decision,
            )
        report = with_baselines(report, candidate.baselines)
        report = apply_gates(report, evaluate.gates)
        report = _with_champion(registry, candidate, report)
    files = _files(candidate, report)
    calibrator = _calibrator(candidate, runner)
    if calibrator is not None:
        files[CALIBRATION] = calibrator.model_dump_json(indent=2).encode()
    panel = _agreement_panel(candidate, runner, evaluate.agreement_members)
    if panel is not None:
        files[AGREEMENT] = panel.model_dump_json().encode()
    if candidate.embedding is not None:
        files[EMBEDDINGS] = candidate.embedding.model_dump_json().encode()
    reference = _explanation_reference(candidate, runner)
    if reference is not None:
        files[EXPLANATIONS] = reference.model_dump_json(indent=2).encode()
    fields = _manifest_fields(candidate, report)
    if int8:
        files["model.int8.onnx"], fields["int8"] = _int8(candidate, runner)
    record = registry.register(
        Registration(
            model=candidate.name,
            source=candidate.source,
            files=files,
            manifest=fields,
            metrics=report.metrics if report else {},
            gates_passed=report.gates_passed if report else None,
            run_id=candidate.run_id,
            dataset=candidate.dataset,
        )
    )
    moved = _move_aliases(registry, record, report)
    return Published(registry.resolve(record.model, record.version), report, moved)


REFERENCE_ROWS = 256
"""Validation rows explained at registration: the importance profile live explanations
are compared with (attribution drift)."""


def _explanation_reference(candidate: Candidate, runner: OnnxRunner) -> ExplanationReference | None:
    """Each feature's share of the attributions on the validation split, with the method
    the server will explain with (so live and reference are alike)."""
    held_out = candidate.calibration or candidate.evaluation
    if held_out is None or not len(held_out.x):
        return None
    explainer = choose_explainer(
        candidate.preprocessor,
        regression=candidate.is_regression,
        onnx_predict=runner,
        spec=candidate.spec.to_dict() if candidate.spec is not None else None,
        weights=candidate.weights,
    )
    rows = held_out.x[:REFERENCE_ROWS]
    importance = importance_profile(explainer, explainer.explain(rows))
    return ExplanationReference(method=explainer.method, rows=len(rows), importance=importance)


def _decision(candidate: Candidate, runner: OnnxRunner) -> Decision | None:
    """The tuned threshold, chosen on the validation rows (the evaluation rows when there
    are none: an imported model's)."""
    request = candidate.threshold
    held_out = candidate.calibration or candidate.evaluation
    if request is None or held_out is None or len(candidate.classes) != 2 or not len(held_out.y):
        return None
    probabilities = softmax(runner(held_out.x).astype("float64"))
    return choose_threshold(
        probabilities, held_out.y, rule=request.rule, positive=request.positive, costs=request.costs
    )


def _calibrator(candidate: Candidate, runner: OnnxRunner) -> Calibrator | None:
    """A classifier's calibrator, fitted on its validation rows (with the test rows too
    when there are fewer than ``MIN_ROWS`` of them; see evaluate/calibration)."""
    held_out = [d for d in (candidate.calibration, candidate.evaluation) if d is not None]
    if candidate.is_regression or not held_out:
        return None
    if len(held_out[0].y) < MIN_ROWS:  # a small set's validation split: add the test rows
        x, y = np.concatenate([d.x for d in held_out]), np.concatenate([d.y for d in held_out])
    else:
        x, y = held_out[0].x, held_out[0].y
    return fit_calibrator(softmax(runner(x)), y)


def _agreement_panel(
    candidate: Candidate, runner: OnnxRunner, members: int
) -> AgreementPanel | None:
    """A table classifier's agreement panel (``evaluate/agreement``), fitted on its
    training split and judged on the calibrator's held-out rows."""
    held_out = [d for d in (candidate.calibration, candidate.evaluation) if d is not None]
    training = candidate.training
    if candidate.is_regression or not held_out or training is None or members < 2:
        return None
    if len(held_out[0].y) >= MIN_ROWS:  # as the calibrator: the test rows only if few
        held_out = held_out[:1]
    frames = [d.raw for d in (training, *held_out)]
    if not all(isinstance(f, pd.DataFrame) for f in frames):
        return None  # images, text and tensors: no numeric features to split
    x, y = np.concatenate([d.x for d in held_out]), np.concatenate([d.y for d in held_out])
    raw = pd.concat([cast(pd.DataFrame, d.raw) for d in held_out], ignore_index=True)
    return fit_panel(
        LabeledFrame(cast(pd.DataFrame, training.raw), training.y),
        LabeledFrame(raw, y),
        softmax(runner(x)).argmax(axis=1),
        classes=len(candidate.classes),
        scaling={
            c.name: Scaling(c.offset, c.scale, c.fill)
            for c in candidate.preprocessor.columns
            if c.type == "numeric"
        },
        excluded=frozenset(candidate.schema.sensitive_names),
        members=members,
    )


def _with_predicted_values(candidate: Candidate, predicted: np.ndarray) -> Candidate:
    """The candidate with its test-split predictions in its profile: the reference a
    regressor's live predictions are compared with."""
    if candidate.profile is None:
        return candidate
    values = numeric_profile("prediction", np.asarray(predicted, dtype="float64").reshape(-1))
    profile = candidate.profile.model_copy(update={"predicted_values": values})
    return replace(candidate, profile=profile)


def _files(candidate: Candidate, report: EvaluationReport | None) -> dict[str, bytes]:
    files = {
        "model.onnx": candidate.onnx,
        "schema.json": candidate.schema.model_dump_json(indent=2).encode(),
        "preprocessing.json": candidate.preprocessor.model_dump_json(indent=2).encode(),
    }
    if candidate.weights is not None:
        files["weights.safetensors"] = candidate.weights
    if candidate.profile is not None:
        files["profile.json"] = candidate.profile.model_dump_json(indent=2).encode()
    if candidate.config_yaml is not None:
        files["config.yaml"] = candidate.config_yaml
    if report is not None:
        files["evaluation.json"] = report.model_dump_json(indent=2).encode()
    return files


def _manifest_fields(candidate: Candidate, report: EvaluationReport | None) -> dict[str, Any]:
    shape = [-1, *candidate.preprocessor.input_shape]
    return {
        "spec": candidate.spec.to_dict() if candidate.spec else None,
        "input": {"name": candidate.input_name, "shape": shape, "dtype": "float32"},
        "output": {
            "name": OUTPUT,
            "shape": [-1, 1 if candidate.is_regression else len(candidate.classes)],
            "dtype": "float32",
        },
        "task": "regression" if candidate.is_regression else "classification",
        "classes": candidate.classes,
        "dataset_sha256": candidate.dataset["sha256"] if candidate.dataset else None,
        "onnx_parity_max_abs_diff": candidate.onnx_parity,
        "metrics": report.metrics if report else {},
        "gates": [gate.to_dict() for gate in report.gates] if report else [],
        "gates_passed": report.gates_passed if report else None,
        "decision": report.decision.model_dump() if report and report.decision else None,
        "started_from": candidate.started_from,
    }


def _int8(candidate: Candidate, runner: OnnxRunner) -> tuple[bytes, dict[str, Any]]:
    quantized = quantize_int8(candidate.onnx)
    details: dict[str, Any] = {"size_ratio": len(quantized) / len(candidate.onnx)}
    if candidate.evaluation is not None and candidate.is_regression:
        x, y = candidate.evaluation.x, candidate.evaluation.y
        base = regression_metrics(y, runner(x))["mae"]
        small = regression_metrics(y, OnnxRunner(quantized)(x))["mae"]
        details.update({"mae": small, "mae_change": small - base})
    elif candidate.evaluation is not None:
        x, y = candidate.evaluation.x, candidate.evaluation.y
        base = float((runner(x).argmax(axis=1) == y).mean())
        small = float((OnnxRunner(quantized)(x).argmax(axis=1) == y).mean())
        details.update({"accuracy": small, "accuracy_change": small - base})
    return quantized, details


def int8_variant(
    registry: Registry, record: VersionRecord, data: EvaluationData | None = None
) -> VersionRecord:
    """Attach a dynamic-INT8 graph to an existing version (``models export --format
    onnx-int8``), recording its accuracy change on ``data`` when labeled rows are given."""
    manifest = registry.manifest(record)
    if manifest.has("model.int8.onnx"):
        return record
    graph = registry.file(record, manifest, "model.onnx")
    probe = Candidate(
        name=record.model,
        source="imported",
        onnx=graph,
        schema=Schema(kind="tensor"),
        preprocessor=Preprocessor(kind="tensor", input_shape=[1]),
        classes=[],
        evaluation=data,
    )
    quantized, details = _int8(probe, OnnxRunner(graph))
    return registry.attach(record, "model.int8.onnx", quantized, fields={"int8": details})


def _with_champion(
    registry: Registry, candidate: Candidate, report: EvaluationReport
) -> EvaluationReport:
    """Judge the production version on the same held-out rows, if it speaks the same classes."""
    assert candidate.evaluation is not None
    try:
        champion = registry.resolve(candidate.name, "production")
        loaded = load_version(registry, champion)
    except VersionNotFound:
        return report
    except DnnopsError as exc:
        return _without_champion(report, f"production cannot be loaded: {exc}")
    mismatch = champion_mismatch(loaded, candidate.schema)
    if mismatch is not None:
        return _without_champion(report, mismatch)
    try:
        x = apply_preprocessing(loaded.preprocessor, candidate.evaluation.raw)
    except DnnopsError as exc:
        return _without_champion(report, f"production {champion.ref} cannot read these rows: {exc}")
    outputs = make_predictor(loaded)(x).astype("float64")
    if candidate.is_regression:
        scalars = regression_metrics(candidate.evaluation.y, outputs)
    else:
        computed = classification_metrics(candidate.evaluation.y, softmax(outputs), loaded.decision)
        scalars = {k: v for k, v in computed.items() if isinstance(v, float)}
    return compare_champion(report, champion.version, scalars)


def _without_champion(report: EvaluationReport, reason: str) -> EvaluationReport:
    """The report as is, saying why the production version was not judged beside it: a
    registration never fails on the comparison."""
    note = f"no comparison with production: {reason}"
    return report.model_copy(update={"notes": [*report.notes, note]})


def _move_aliases(
    registry: Registry, record: VersionRecord, report: EvaluationReport | None
) -> list[str]:
    if record.source != "trained" or report is None or report.gates_passed is False:
        return []
    moved = ["candidate"]
    registry.set_alias(
        record.model, "candidate", record.version, reason="all evaluation gates passed"
    )
    if "production" not in registry.aliases(record.model):
        registry.set_alias(
            record.model, "production", record.version, reason="first version to pass its gates"
        )
        moved.append("production")
    return moved
