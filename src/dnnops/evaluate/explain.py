"""Why a model answered what it did: per-feature attributions of one prediction.

Two methods, chosen by what a version holds:

- **Integrated Gradients** (captum, the ``explain`` extra) on the version's torch weights,
  when its architecture is a built-in one: the gradient of the predicted class's
  probability, integrated along the straight line from a baseline input to the instance.
  The attributions of an instance add up to p(instance) - p(baseline).
- **Occlusion** on the ONNX graph otherwise (an imported model, a user's own module, or
  no captum): each feature set to its baseline value in turn, and the drop in the predicted
  class's probability is its attribution. One batched call per instance.

The baseline is the training data's typical input: each numeric column's training mean
(what a missing value is imputed with), no category, and for tensors the zero input. A
table's attributions are summed over the model columns a feature was encoded into (a
category's one-hot columns) and named by feature; a tensor's are per input element; an
image's are a saliency map (per pixel, summed over the channels); a text's are per token,
each named by the token it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from dnnops.data.media.text import CLS, PAD
from dnnops.data.preprocess import Preprocessor, TextTransform, typical_row
from dnnops.evaluate.metrics import softmax

Method = Literal["integrated_gradients", "occlusion"]
PredictLogits = Callable[[np.ndarray], np.ndarray]
STEPS = 32
"""Integrated Gradients' steps along the path: its sums are within ~1% of the exact
integral for the MLPs here at 32 (checked by the completeness test)."""


class ExplanationReference(BaseModel):
    """``explanations.json`` of a version: its importance profile on the validation split."""

    method: Method
    rows: int
    importance: dict[str, float]


@dataclass(frozen=True)
class Explanation:
    method: Method
    outputs: np.ndarray
    """(N, K) class probabilities, or (N, 1) predicted values."""
    targets: np.ndarray
    """(N,) the output each instance's attributions explain: its predicted class (0 for
    a regressor's single output)."""
    attributions: np.ndarray
    """(N, *input_shape) over the model's inputs."""
    inputs: np.ndarray
    """(N, *input_shape) the model inputs explained (a text's token ids name its tokens)."""


class Explainer:
    """Explains batches of preprocessed inputs with one method."""

    def __init__(
        self,
        method: Method,
        run: Callable[[np.ndarray, np.ndarray], Explanation],
        preprocessor: Preprocessor,
    ) -> None:
        self.method = method
        self._run = run
        self.preprocessor = preprocessor

    def explain(self, x: np.ndarray) -> Explanation:
        return self._run(np.ascontiguousarray(x, dtype="float32"), baseline_of(self.preprocessor))

    def named(self, explanation: Explanation) -> list[Any]:
        """Each instance's attributions as ``:explain`` answers them: by feature name (a
        table), shaped as the input (a tensor), a saliency map (an image), or the text's
        tokens each with its attribution."""
        return named_attributions(self.preprocessor, explanation)

    def keyed(self, explanation: Explanation) -> list[dict[str, float]]:
        """Each instance's attributions keyed by what importance profiles compare: a
        table's features, a tensor's elements, an image's pixels, a text's positions."""
        return keyed_attributions(self.preprocessor, explanation)


def baseline_of(pre: Preprocessor) -> np.ndarray:
    """The model input of a typical instance: means for numbers, no category, zeros for
    tensors (the preprocessed form of the training mean for a table's numeric columns)."""
    if pre.kind == "tensor" or pre.medium is not None:  # images: the mean colour; text: pads
        return np.zeros(pre.input_shape, dtype="float32")
    return typical_row(pre)


def feature_groups(pre: Preprocessor) -> list[tuple[str, slice]]:
    """Each raw feature of a table and the flat model columns it was encoded into."""
    groups, start = [], 0
    for column in pre.columns:
        groups.append((column.name, slice(start, start + column.width)))
        start += column.width
    return groups


def named_attributions(pre: Preprocessor, explanation: Explanation) -> list[Any]:
    medium = pre.medium
    if medium is not None and medium.image is not None:
        return [row.tolist() for row in saliency_maps(explanation.attributions)]
    if medium is not None and medium.text is not None:
        return token_attributions(medium.text, explanation)
    if pre.kind == "tensor":
        return [row.tolist() for row in explanation.attributions]
    flat = explanation.attributions.reshape(len(explanation.attributions), -1)
    groups = feature_groups(pre)
    return [
        {name: float(row[where].sum()) for name, where in groups} for row in flat.astype("float64")
    ]


def keyed_attributions(pre: Preprocessor, explanation: Explanation) -> list[dict[str, float]]:
    if pre.kind == "table" and pre.medium is None:
        return list(named_attributions(pre, explanation))
    attributions = explanation.attributions
    medium = pre.medium
    if medium is not None and medium.image is not None:
        attributions = saliency_maps(attributions)
    flat = attributions.reshape(len(attributions), -1).astype("float64")
    return [{str(i): float(v) for i, v in enumerate(row)} for row in flat]


def saliency_maps(attributions: np.ndarray) -> np.ndarray:
    """(N, C, H, W) attributions -> (N, H, W): each pixel's, summed over its channels (the
    sum keeps Integrated Gradients' completeness: a map adds up to p(x) - p(baseline))."""
    maps: np.ndarray = attributions.sum(axis=1)
    return maps


def token_attributions(text: TextTransform, explanation: Explanation) -> list[Any]:
    """Each text's tokens in order, each with its attribution ([CLS] and padding left out)."""
    from dnnops.data.media.encode import text_encoder

    encoder = text_encoder(text.tokenizer, text.max_length)
    out = []
    for ids, values in zip(explanation.inputs, explanation.attributions, strict=True):
        where = np.flatnonzero((ids != PAD) & (ids != CLS))
        tokens = encoder.names_of(ids[where].astype(np.int64))
        out.append(
            [
                {"token": token, "attribution": float(values[p])}
                for token, p in zip(tokens, where.tolist(), strict=True)
            ]
        )
    return out


def _probabilities(logits: np.ndarray, regression: bool) -> np.ndarray:
    return logits.astype("float64") if regression else softmax(logits.astype("float64"))


OCCLUDED_GROUPS = 1024
"""A tensor's elements are occluded in at most this many contiguous groups (one model row
each): a 28x28 image element by element, a 224x224x3 one in blocks of 147."""


def occlusion_groups(pre: Preprocessor) -> list[slice]:
    if pre.kind == "table" and pre.medium is None:
        return [where for _, where in feature_groups(pre)]
    width = pre.feature_width
    bounds = np.linspace(0, width, min(width, OCCLUDED_GROUPS) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds.tolist())]


def occlusion_explainer(
    predict: PredictLogits, pre: Preprocessor, *, regression: bool
) -> Explainer:
    """Each feature (a table's) or block of input elements (a tensor's) set to the
    baseline in turn; its attribution is spread evenly over the model columns it covers."""
    groups = occlusion_groups(pre)

    def run(x: np.ndarray, baseline: np.ndarray) -> Explanation:
        outputs = _probabilities(predict(x), regression)
        targets = np.zeros(len(x), dtype=np.int64) if regression else outputs.argmax(axis=1)
        flat_base = baseline.reshape(-1)
        attributions = np.zeros((len(x), pre.feature_width), dtype="float32")
        for index, row in enumerate(x.reshape(len(x), -1)):
            occluded = np.repeat(row[None, :], len(groups), axis=0)
            for g, where in enumerate(groups):
                occluded[g, where] = flat_base[where]
            shaped = occluded.reshape(len(groups), *pre.input_shape)
            dropped = _probabilities(predict(shaped), regression)[:, targets[index]]
            change = outputs[index, targets[index]] - dropped
            for g, where in enumerate(groups):
                attributions[index, where] = change[g] / (where.stop - where.start)
        shaped_attributions = attributions.reshape(len(x), *pre.input_shape)
        return Explanation("occlusion", outputs, targets, shaped_attributions, x)

    return Explainer("occlusion", run, pre)


def integrated_gradients_explainer(
    model: Any, pre: Preprocessor, *, regression: bool, steps: int = STEPS
) -> Explainer:
    """Integrated Gradients (captum) of the predicted class's probability."""
    import torch
    from captum.attr import IntegratedGradients

    model.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        return logits if regression else torch.softmax(logits, dim=1)

    method = IntegratedGradients(forward)

    def run(x: np.ndarray, baseline: np.ndarray) -> Explanation:
        inputs = torch.from_numpy(x)
        with torch.no_grad():
            outputs = forward(inputs).double().numpy()
        targets = np.zeros(len(x), dtype=np.int64) if regression else outputs.argmax(axis=1)
        base = torch.from_numpy(np.broadcast_to(baseline, x.shape).copy())
        attributions = method.attribute(
            inputs,
            baselines=base,
            target=torch.from_numpy(targets),
            n_steps=steps,
            internal_batch_size=max(steps, 4096 // max(1, steps) * steps),
        )
        found = attributions.detach().numpy()
        return Explanation("integrated_gradients", outputs, targets, found, x)

    return Explainer("integrated_gradients", run, pre)


def choose_explainer(
    pre: Preprocessor,
    *,
    regression: bool,
    onnx_predict: PredictLogits,
    spec: dict[str, Any] | None,
    weights: bytes | None,
) -> Explainer:
    """Integrated Gradients when the version's torch weights can be rebuilt (a built-in
    architecture) and captum is installed; occlusion on the ONNX graph otherwise."""
    built_in = spec is not None and not str(spec.get("arch", "")).startswith("python:")
    if pre.vocab_size:  # token ids have no gradient: each position is occluded (set to [PAD])
        return occlusion_explainer(onnx_predict, pre, regression=regression)
    if built_in and weights is not None and captum_installed():
        from safetensors.torch import load as load_safetensors

        from dnnops.models import ModelSpec, build_model

        assert spec is not None
        model = build_model(ModelSpec.from_dict(spec))
        model.load_state_dict(load_safetensors(weights))
        return integrated_gradients_explainer(model, pre, regression=regression)
    return occlusion_explainer(onnx_predict, pre, regression=regression)


def importance_profile(explainer: Explainer, explanation: Explanation) -> dict[str, float]:
    """Mean |attribution| per feature (``Explainer.keyed``: a tensor's elements, an
    image's pixels and a text's positions keyed by flat index)."""
    return mean_abs_importance(explainer.keyed(explanation))


def captum_installed() -> bool:
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        return False
    return True


def mean_abs_importance(named: list[dict[str, float]]) -> dict[str, float]:
    """Each feature's mean |attribution| over instances, normalised to sum to 1: a global
    importance profile, comparable across windows and against the validation split."""
    if not named:
        return {}
    features = list(named[0])
    totals = np.array([[abs(row.get(f, 0.0)) for f in features] for row in named]).mean(axis=0)
    whole = float(totals.sum())
    if whole <= 0.0:
        return {f: 0.0 for f in features}
    return {f: float(v / whole) for f, v in zip(features, totals, strict=True)}


def importance_shift(live: dict[str, float], reference: dict[str, float]) -> float:
    """Half the L1 distance between two importance profiles: the share of the attribution
    that moved to other features (0: the same explanations; 1: disjoint)."""
    features = set(live) | set(reference)
    return 0.5 * sum(abs(live.get(f, 0.0) - reference.get(f, 0.0)) for f in features)
