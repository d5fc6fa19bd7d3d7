"""K-fold cross-validation of a version's recipe: one held-out test split says little
on a small table (its accuracy moves by several points with the seed); K folds give a
mean and a spread. Each fold trains an ordinary run (``dnnops runs list``), registered
nowhere."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dnnops.config import ProjectConfig
from dnnops.errors import UsageError
from dnnops.evaluate.metrics import classification_metrics, regression_metrics, softmax
from dnnops.home import Home
from dnnops.registry.open import open_runs
from dnnops.train.pipeline import TrainOutcome, train_project
from dnnops.train.progress import ProgressSink

SHOWN = {
    "classification": ("accuracy", "balanced_accuracy", "min_recall", "macro_f1", "roc_auc"),
    "regression": ("mae", "rmse", "r2", "mape"),
}


@dataclass(frozen=True)
class FoldScore:
    fold: int
    run_id: str
    samples: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class CrossValidation:
    task: str
    folds: list[FoldScore]

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: the folds' mean and standard deviation (ddof 1), min and max."""
        out = {}
        for name in SHOWN[self.task]:
            values = np.array([f.metrics[name] for f in self.folds if name in f.metrics])
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            out[name] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        return out


def cross_validate(
    config: ProjectConfig,
    home: Home,
    folds: int,
    *,
    data: Path | None = None,
    progress: ProgressSink | None = None,
) -> CrossValidation:
    """Train ``config`` ``folds`` times, each fold in turn the test part."""
    if config.data.split.by is not None:
        raise UsageError(
            "--cv and data.split.by exclude each other: a split by time has one future; "
            "evaluate on the newest rows instead"
        )
    if folds < 2:
        raise UsageError(f"--cv needs at least 2 folds, got {folds}")
    scores = []
    for fold in range(folds):
        split = config.data.split.model_copy(update={"folds": folds, "fold": fold})
        changes: dict[str, object] = {"split": split}
        if data is not None:
            changes["source"] = str(data)
        fold_config = config.model_copy(update={"data": config.data.model_copy(update=changes)})
        outcome = train_project(fold_config, home.runs_dir, open_runs(home), progress=progress)
        scores.append(
            FoldScore(fold, outcome.run_id, len(outcome.prepared.test.y), _scores(outcome))
        )
    return CrossValidation(config.task, scores)


def _scores(outcome: TrainOutcome) -> dict[str, float]:
    test = outcome.prepared.test
    with torch.no_grad():
        outputs = outcome.model(torch.from_numpy(test.x)).numpy().astype("float64")
    if outcome.config.task == "regression":
        return regression_metrics(test.y, outputs.reshape(-1))
    computed = classification_metrics(test.y, softmax(outputs))
    return {k: float(v) for k, v in computed.items() if isinstance(v, float)}
