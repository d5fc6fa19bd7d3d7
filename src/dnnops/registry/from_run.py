"""A finished training run as a registry ``Candidate``: export, parity check, lineage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnnops.config import ProjectConfig
from dnnops.data.dataset import Inputs
from dnnops.data.embedding_profile import (
    MAX_FIT_ROWS,
    EmbeddingProfile,
    fit_embedding_profile,
    fit_projection,
    project,
)
from dnnops.data.preprocess import examples_of
from dnnops.data.schema import category_key
from dnnops.evaluate.baseline import STRONG, TRIVIAL, Rows, strong_baseline, trivial_baseline
from dnnops.evaluate.decision import rarer_class
from dnnops.evaluate.gates import check_gate_names, gate_metrics
from dnnops.models.embedding_tap import EmbeddingTap, head_of, penultimate
from dnnops.models.weights import weights_bytes
from dnnops.registry.export import EMBEDDING, OUTPUT, check_parity, export_onnx
from dnnops.registry.publish import Candidate, EvaluationData, ThresholdRequest
from dnnops.train.pipeline import TrainOutcome

EXAMPLES = 8
"""Held-out rows an image or text version keeps as a person sees them (the dashboard)."""


def check_before_training(config: ProjectConfig) -> None:
    """What would fail the registration after training, checked before the first step:
    gates on metrics the evaluation will not have."""
    available = gate_metrics(
        regression=config.task == "regression",
        groups=config.data.group is not None,
        baseline=config.evaluate.baseline,
    )
    check_gate_names(config.evaluate.gates, available)


def candidate_from_run(outcome: TrainOutcome) -> Candidate:
    """Export the run's model to ONNX and check it against torch on the test set."""
    prepared = outcome.prepared
    embedding = None
    if prepared.schema.medium is not None and head_of(outcome.model) is not None:
        tapped, embedding = embedding_tap(outcome)
        onnx_bytes = export_onnx(tapped, outcome.spec.input_shape, (OUTPUT, EMBEDDING))
    else:
        onnx_bytes = export_onnx(outcome.model, outcome.spec.input_shape)
    parity = check_parity(onnx_bytes, outcome.model, prepared.test.x)
    test_part = prepared.dataset.take(prepared.split.test)
    groups = None
    if test_part.groups is not None:
        groups = np.array([category_key(g) for g in test_part.groups.to_numpy(dtype=object)])
    schema = prepared.schema
    assert schema.target is not None  # training data always has labels
    config_yaml = (outcome.run_dir / "config.yaml").read_bytes()
    return Candidate(
        name=outcome.config.name,
        source="trained",
        onnx=onnx_bytes,
        schema=schema,
        preprocessor=prepared.preprocessor,
        classes=list(schema.target.classes),
        weights=weights_bytes(outcome.model),
        spec=outcome.spec,
        profile=prepared.profile,
        config_yaml=config_yaml,
        run_id=outcome.run_id,
        dataset={
            "sha256": prepared.fingerprint,
            "source": outcome.config.data.source,
            "rows": len(prepared.dataset),
            "schema": schema.model_dump(mode="json"),
        },
        onnx_parity=parity,
        baselines=baselines_of(outcome),
        threshold=_threshold(outcome),
        started_from=outcome.start.to_dict() if outcome.start is not None else None,
        embedding=embedding,
        evaluation=EvaluationData(prepared.test.x, prepared.test.y, test_part.inputs, groups),
        calibration=EvaluationData(
            prepared.valid.x, prepared.valid.y, prepared.dataset.take(prepared.split.valid).inputs
        ),
        training=EvaluationData(
            prepared.train.x, prepared.train.y, prepared.dataset.take(prepared.split.train).inputs
        ),
    )


def embedding_tap(outcome: TrainOutcome) -> tuple[EmbeddingTap, EmbeddingProfile]:
    """An image or text model answering its embedding beside its logits (a PCA of its
    penultimate layer on the training split), and the reference those embeddings are
    tested against: the held-out rows' (validation and test), which the weights never
    fitted, as live inputs will be."""
    prepared, model = outcome.prepared, outcome.model
    seed = outcome.config.data.split.seed
    train_x = prepared.train.x
    if len(train_x) > MAX_FIT_ROWS:
        train_x = train_x[np.random.default_rng(seed).choice(len(train_x), MAX_FIT_ROWS, False)]
    projection = fit_projection(penultimate(model, train_x), seed)
    held_out = np.concatenate([prepared.valid.x, prepared.test.x])
    examples = examples_of(prepared.preprocessor, held_out[:EXAMPLES])
    embedded = project(projection, penultimate(model, held_out))
    reference = fit_embedding_profile(embedded, seed, examples=examples)
    mean, components = np.asarray(projection.mean), np.asarray(projection.components)
    return EmbeddingTap(model, mean, components), reference


def _threshold(outcome: TrainOutcome) -> ThresholdRequest | None:
    train = outcome.config.train
    if train.threshold == "none" or outcome.prepared.schema.output_width != 2:
        return None
    costs = (train.threshold_costs.false_positive, train.threshold_costs.false_negative)
    positive = rarer_class(outcome.prepared.train.y)
    return ThresholdRequest(train.threshold, positive, costs)


def baselines_of(outcome: TrainOutcome) -> dict[str, dict[str, float]]:
    """The trivial and (unless ``evaluate.baseline`` says otherwise) the strong baseline,
    trained on the run's training split and scored on its test split."""
    wanted = outcome.config.evaluate.baseline
    prepared = outcome.prepared
    target = prepared.schema.target
    if wanted == "none" or target is None:
        return {}
    classes = 0 if target.is_regression else len(target.classes)
    out = {TRIVIAL: trivial_baseline(prepared.train.y, prepared.test.y, classes=classes)}
    if wanted == "hist_gradient_boosting":
        medium = prepared.schema.medium
        if medium is not None:
            train_x, test_x = _media_features(prepared.train.x, prepared.test.x, medium.type)
        else:
            train_x = _table(prepared.dataset.take(prepared.split.train).inputs)
            test_x = _table(prepared.dataset.take(prepared.split.test).inputs)
        train, test = Rows(train_x, prepared.train.y), Rows(test_x, prepared.test.y)
        out[STRONG] = strong_baseline(
            train,
            test,
            classes=classes,
            seed=outcome.config.data.split.seed,
            balanced=outcome.config.train.class_weight == "balanced",
        )
    return out


BAG_OF_WORDS = 512
"""Token ids a text's bag of words counts for the strong baseline (the most frequent in
training)."""


def _media_features(
    train: np.ndarray, test: np.ndarray, kind: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a tree model can take of images (their preprocessed pixels, one column per
    value) or of texts (a bag of words: counts of the most frequent training tokens)."""
    if kind == "image":
        return _table(train), _table(test)
    train_ids, test_ids = train.astype(np.int64), test.astype(np.int64)
    counts = np.bincount(train_ids[train_ids > 2].ravel())  # [PAD], [UNK], [CLS] aside
    kept = np.argsort(-counts, kind="stable")[:BAG_OF_WORDS]
    kept = kept[counts[kept] > 0]

    def bag(ids: np.ndarray) -> pd.DataFrame:
        table = np.stack([(ids == token).sum(axis=1) for token in kept], axis=1)
        return pd.DataFrame(table.astype(np.float32), columns=[f"token{t}" for t in kept])

    return bag(train_ids), bag(test_ids)


def _table(inputs: Inputs) -> pd.DataFrame:
    """Tensor instances flattened to one column per value (what a tree model can take)."""
    if isinstance(inputs, pd.DataFrame):
        return inputs
    flat = np.asarray(inputs).reshape(len(inputs), -1)
    return pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])])
