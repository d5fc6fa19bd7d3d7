"""The evaluation report stored with every model version and printed as a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel

from dnnops.config import GateConfig
from dnnops.evaluate.baseline import STRONG, comparison, primary_metric
from dnnops.evaluate.decision import Decision, decide
from dnnops.evaluate.gates import GateResult, check_gates
from dnnops.evaluate.latency import measure_latency
from dnnops.evaluate.metrics import (
    classification_metrics,
    group_accuracies,
    regression_metrics,
    softmax,
)
from dnnops.vocabulary import Task

PredictLogits = Callable[[np.ndarray], np.ndarray]
"""Preprocessed inputs (N, *input_shape) float32 -> logits (N, classes)."""


class ChampionComparison(BaseModel):
    version: int
    metrics: dict[str, float]
    delta: dict[str, float]
    """challenger minus champion, on the same test rows."""


class EvaluationReport(BaseModel):
    samples: int
    task: Task = "classification"
    classes: list[int | str]
    metrics: dict[str, float]
    """Scalars that gates can name."""
    fpr_per_class: list[float]
    fnr_per_class: list[float]
    confusion_matrix: list[list[int]]
    group_accuracy: dict[str, float] | None = None
    gates: list[GateResult] = []
    gates_passed: bool | None = None
    champion: ChampionComparison | None = None
    decision: Decision | None = None
    """A binary classifier's tuned threshold (``train.threshold``), which the metrics use."""
    baselines: dict[str, dict[str, float]] = {}
    """The same metrics for the baselines on the same rows (``trivial``, and
    ``hist_gradient_boosting`` unless ``evaluate.baseline`` turned it off)."""
    notes: list[str] = []
    """What the reader should know about how it was judged (a skipped comparison)."""


def evaluate_predictions(
    predict: PredictLogits,
    x: np.ndarray,
    y: np.ndarray,
    *,
    classes: Sequence[int | str],
    groups: np.ndarray | None = None,
    noise_std: float = 0.1,
    seed: int = 0,
    latency: bool = True,
    decision: Decision | None = None,
) -> EvaluationReport:
    """Every metric of the report (gates and champion are added by the caller), with the
    answered class as ``decision`` has it (argmax without one)."""
    proba = softmax(predict(x).astype("float64"))
    computed = classification_metrics(y, proba, decision)
    scalars = {k: v for k, v in computed.items() if isinstance(v, float)}
    noisy = x + np.random.default_rng(seed).normal(0.0, noise_std, x.shape).astype("float32")
    noisy_proba = softmax(predict(noisy).astype("float64"))
    scalars["robust_accuracy"] = float((decide(noisy_proba, decision) == y).mean())
    by_group = None
    if groups is not None:
        by_group = group_accuracies(y, decide(proba, decision), groups)
        scalars["group_accuracy_gap"] = max(by_group.values()) - min(by_group.values())
    if latency:
        scalars.update(measure_latency(predict, x))
    return EvaluationReport(
        samples=len(y),
        decision=decision,
        classes=list(classes),
        metrics=scalars,
        fpr_per_class=computed["fpr_per_class"],
        fnr_per_class=computed["fnr_per_class"],
        confusion_matrix=computed["confusion_matrix"],
        group_accuracy=by_group,
    )


def evaluate_regression(
    predict: PredictLogits,
    x: np.ndarray,
    y: np.ndarray,
    *,
    noise_std: float = 0.1,
    seed: int = 0,
    latency: bool = True,
) -> EvaluationReport:
    """MAE, RMSE, R², MAPE, the MAE under input noise (``robust_mae``) and latency."""
    scalars = regression_metrics(y, predict(x))
    noisy = x + np.random.default_rng(seed).normal(0.0, noise_std, x.shape).astype("float32")
    scalars["robust_mae"] = regression_metrics(y, predict(noisy))["mae"]
    if latency:
        scalars.update(measure_latency(predict, x))
    return EvaluationReport(
        samples=len(y),
        task="regression",
        classes=[],
        metrics=scalars,
        fpr_per_class=[],
        fnr_per_class=[],
        confusion_matrix=[],
    )


def apply_gates(report: EvaluationReport, gates: Sequence[GateConfig]) -> EvaluationReport:
    results = check_gates(report.metrics, gates)
    return report.model_copy(
        update={
            "gates": results,
            # no gates: nothing was passed, so None ("evaluated, no gates"), never True
            "gates_passed": all(r.passed for r in results) if results else None,
        }
    )


def compare_champion(
    report: EvaluationReport, version: int, champion_metrics: dict[str, float]
) -> EvaluationReport:
    shared = [k for k in report.metrics if k in champion_metrics and not k.startswith("latency")]
    delta = {k: report.metrics[k] - champion_metrics[k] for k in shared}
    comparison = ChampionComparison(version=version, metrics=champion_metrics, delta=delta)
    return report.model_copy(update={"champion": comparison})


def with_baselines(
    report: EvaluationReport, baselines: dict[str, dict[str, float]]
) -> EvaluationReport:
    """The report with its baselines' scores, and (with the strong one) ``beats_baseline``
    and the gap on the task's primary metric among the metrics gates can name."""
    if not baselines:
        return report
    metrics = dict(report.metrics)
    strong = baselines.get(STRONG)
    if strong is not None:
        metric = primary_metric(report.task, len(report.classes))
        metrics.update(comparison(report.metrics, strong, metric))
    return report.model_copy(update={"baselines": baselines, "metrics": metrics})
