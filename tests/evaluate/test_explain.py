"""Attributions that mean what they say: Integrated Gradients adds up to the change in the
explained probability, occlusion finds the one feature a model reads, a category's one-hot
columns come back as one named feature, and a profile that moved is measured as moved."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import save
from torch import nn

from dnnops.data.preprocess import ColumnTransform, Preprocessor
from dnnops.evaluate.explain import (
    baseline_of,
    choose_explainer,
    importance_shift,
    integrated_gradients_explainer,
    mean_abs_importance,
    occlusion_explainer,
)
from dnnops.evaluate.metrics import softmax
from dnnops.models import ModelSpec, build_model

TABLE = Preprocessor(
    kind="table",
    columns=[
        ColumnTransform(name="age", type="numeric", offset=40.0, scale=10.0, fill=45.0),
        ColumnTransform(name="city", type="category", categories=["a", "b", "c"]),
        ColumnTransform(name="income", type="numeric", offset=0.0, scale=1.0, fill=0.0),
    ],
    input_shape=[5],
)


def test_the_baseline_is_the_typical_instance() -> None:
    assert baseline_of(TABLE).tolist() == [0.5, 0.0, 0.0, 0.0, 0.0]  # (45 - 40) / 10


def test_integrated_gradients_add_up_to_the_change_in_probability() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    explainer = integrated_gradients_explainer(model, TABLE, regression=False, steps=64)
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    explained = explainer.explain(x)
    with torch.no_grad():
        at_x = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
        at_base = torch.softmax(model(torch.from_numpy(baseline_of(TABLE)[None, :])), 1).numpy()
    rows = np.arange(len(x))
    change = at_x[rows, explained.targets] - at_base[0, explained.targets]
    np.testing.assert_allclose(explained.attributions.sum(axis=1), change, atol=0.01)
    assert explained.targets.tolist() == at_x.argmax(axis=1).tolist()
    named = explainer.named(explained)
    assert list(named[0]) == ["age", "city", "income"]  # city: its three columns as one
    assert np.isclose(named[0]["city"], explained.attributions[0, 1:4].sum())


def test_occlusion_finds_the_only_feature_a_model_reads() -> None:
    weights = np.array([[0.0, 0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0, -3.0]], "float32")

    def predict(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1) @ weights.T  # logits from income alone

    explainer = occlusion_explainer(predict, TABLE, regression=False)
    x = np.array([[1.0, 1.0, 0.0, 0.0, 2.0], [3.0, 0.0, 0.0, 1.0, -1.0]], "float32")
    named = explainer.named(explainer.explain(x))
    for row, instance in zip(named, x, strict=True):
        assert row["age"] == 0.0 and row["city"] == 0.0
        p = softmax(predict(instance[None, :]))[0]
        assert np.isclose(row["income"], p.max() - 0.5, atol=1e-6)  # at the baseline: 50/50


def test_a_built_in_architecture_is_explained_with_integrated_gradients() -> None:
    spec = ModelSpec("mlp", (5,), 3, {"hidden": [8], "dropout": 0.0})
    model = build_model(spec)
    weights = save(model.state_dict())

    def onnx(x: np.ndarray) -> np.ndarray:  # stands in for the graph
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()  # type: ignore[no-any-return]

    chosen = choose_explainer(TABLE, regression=False, onnx_predict=onnx, spec=spec.to_dict(),
                              weights=weights)  # fmt: skip
    assert chosen.method == "integrated_gradients"
    user_code = {**spec.to_dict(), "arch": "python:my.Module"}
    assert choose_explainer(TABLE, regression=False, onnx_predict=onnx, spec=user_code,
                            weights=weights).method == "occlusion"  # fmt: skip


def test_importance_profiles_and_their_shift() -> None:
    profile = mean_abs_importance([{"a": 1.0, "b": -1.0}, {"a": 3.0, "b": 1.0}])
    assert profile == {"a": 2 / 3, "b": 1 / 3}
    assert importance_shift(profile, profile) == 0.0
    assert importance_shift({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}) == 1.0
