"""Bring a model trained elsewhere: an ONNX file, or torch weights with an architecture.

The result is a version like any trained one (ONNX graph, schema, preprocessing, profile),
so serving, monitoring and rollouts treat it the same. Numbers pass through unchanged
(the model was trained on its own preprocessing); category columns are one-hot encoded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnnops.config import PreprocessingConfig
from dnnops.data.dataset import Dataset
from dnnops.data.fingerprint import fingerprint
from dnnops.data.prepare import label_indices
from dnnops.data.preprocess import Preprocessor, apply_preprocessing, fit_preprocessor
from dnnops.data.profile import Profile, build_profile
from dnnops.data.schema import Schema, TargetSchema, TensorSchema, infer_schema
from dnnops.data.sources import load_source
from dnnops.errors import ModelError, UsageError
from dnnops.models.build import ModelSpec, build_model
from dnnops.models.weights import weights_bytes
from dnnops.registry.export import check_parity, export_onnx, onnx_input_name, onnx_signature
from dnnops.registry.publish import Candidate, EvaluationData

FLOAT32_MAX = float(np.finfo("float32").max)


@dataclass(frozen=True)
class ImportRequest:
    name: str
    file: Path
    schema_file: Path | None = None
    reference: Path | None = None
    target: str = "target"
    arch: str | None = None
    params: Mapping[str, Any] | None = None
    input_shape: Sequence[int] | None = None
    classes: Sequence[int | str] | None = None


@dataclass(frozen=True)
class _Context:
    schema: Schema
    preprocessor: Preprocessor | None
    profile: Profile | None
    reference: Dataset | None


def candidate_from_file(request: ImportRequest) -> Candidate:
    if not request.file.is_file():
        raise UsageError(f"model file {request.file} does not exist")
    context = _context(request)
    suffix = request.file.suffix.lower()
    if suffix == ".onnx":
        return _from_onnx(request, context)
    if suffix in (".safetensors", ".pt", ".pth"):
        return _from_weights(request, context)
    raise UsageError(
        f"{request.file}: import an .onnx file, or .safetensors/.pt weights with --arch"
    )


def _context(request: ImportRequest) -> _Context:
    reference = None
    if request.reference is not None:
        reference = load_source(str(request.reference), request.target, require_target=False)
    if request.schema_file is not None:
        schema = _read_schema(request.schema_file)
    elif reference is not None:
        schema = infer_schema(reference, target_name=request.target)
    else:
        return _Context(Schema(kind="tensor"), None, None, None)
    if reference is None:
        return _Context(schema, None, None, None)
    preprocessor = fit_preprocessor(reference, schema, PreprocessingConfig(numeric="none"))
    return _Context(schema, preprocessor, build_profile(reference, schema), reference)


def _read_schema(path: Path) -> Schema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read the schema {path}: {exc}") from None
    return Schema.model_validate(raw.get("schema", raw))  # bare, or `data profile --json`


def _from_onnx(request: ImportRequest, context: _Context) -> Candidate:
    graph = request.file.read_bytes()
    inputs, outputs = onnx_signature(graph)
    instance = [d if d is not None else -1 for d in inputs[1:]]
    if any(d < 1 for d in instance) or not outputs or outputs[-1] is None:
        raise ModelError(
            f"{request.file}: only the batch dimension may be dynamic, got input {inputs}"
        )
    candidate = _candidate(
        request, context, graph, shape=instance, width=int(outputs[-1]), weights=None, spec=None
    )
    return replace(candidate, input_name=onnx_input_name(graph))


def _from_weights(request: ImportRequest, context: _Context) -> Candidate:
    if request.arch is None:
        raise UsageError(
            "importing weights needs the architecture: "
            "--arch mlp|cnn|transformer|python:pkg.mod:Class"
        )
    shape = list(
        request.input_shape or (context.preprocessor.input_shape if context.preprocessor else [])
    )
    if not shape:
        raise UsageError(
            "give the input shape with --input-shape (for example 1,8,8) or --reference DATA"
        )
    classes = _classes(request, context, None)
    spec = ModelSpec(request.arch, tuple(shape), len(classes), dict(request.params or {}))
    model = build_model(spec)
    expected = model.state_dict()
    state = matched_state(_read_state(request.file), expected)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped parameters
        detail = " ".join(str(exc).split())[:300]
        layout = ", ".join(f"{k} {list(v.shape)}" for k, v in expected.items())[:600]
        raise ModelError(
            f"{request.file} does not fit {request.arch}: {detail}. This architecture expects "
            f"(name shape, in order): {layout}; check --arch, --param and --input-shape"
        ) from None
    model.eval()
    graph = export_onnx(model, spec.input_shape)
    probe = np.random.default_rng(0).normal(size=(16, *shape)).astype("float32")
    candidate = _candidate(
        request,
        context,
        graph,
        shape=shape,
        width=len(classes),
        weights=weights_bytes(model),
        spec=spec,
    )
    parity = check_parity(graph, model, probe)
    return replace(candidate, onnx_parity=parity)


def matched_state(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The user's tensors under the architecture's names: by name when they match, else by
    order when every shape agrees (a plain ``nn.Sequential`` of the same layers names them
    ``0.weight``, ``2.weight`` where the built-in MLP says ``net.1.weight``, ``net.4.weight``)."""
    if set(state) == set(expected):
        return state
    ours = sorted(expected.items(), key=lambda item: _layer_order(item[0]))
    theirs = sorted(state.items(), key=lambda item: _layer_order(item[0]))
    if len(ours) == len(theirs) and all(
        tuple(a.shape) == tuple(b.shape) for (_, a), (_, b) in zip(ours, theirs, strict=True)
    ):
        return {name: tensor for (name, _), (_, tensor) in zip(ours, theirs, strict=True)}
    return state


def _layer_order(name: str) -> tuple[tuple[int, int | str], ...]:
    """``net.10.weight`` after ``net.2.bias``: numbers compared as numbers, a layer's weight
    before its bias (safetensors files list their keys sorted as text)."""
    parts: list[tuple[int, int | str]] = []
    for part in name.split("."):
        if part.isdigit():
            parts.append((0, int(part)))
        else:
            parts.append((1, {"weight": "0", "bias": "1"}.get(part, "2" + part)))
    return tuple(parts)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load

        return load(path.read_bytes())
    try:
        state = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError for anything but plain tensors
        raise ModelError(
            f"{path} is not a plain state dict (weights_only load refused it): {exc}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} must hold a state dict: parameter names mapped to tensors")
    return state


def _classes(request: ImportRequest, context: _Context, width: int | None) -> list[int | str]:
    if request.classes is not None:
        return list(request.classes)
    if context.schema.target is not None:
        return list(context.schema.target.classes)
    if width is not None:
        return list(range(width))
    raise UsageError(
        "give the classes with --classes N (or names) or --reference data that has labels"
    )


def _candidate(
    request: ImportRequest,
    context: _Context,
    graph: bytes,
    *,
    shape: list[int],
    width: int,
    weights: bytes | None,
    spec: ModelSpec | None,
) -> Candidate:
    classes = _classes(request, context, width)
    if len(classes) != width:
        raise ModelError(f"the model outputs {width} scores but {len(classes)} classes were given")
    schema, preprocessor = _serving_schema(context, shape, classes)
    return Candidate(
        name=request.name,
        source="imported",
        onnx=graph,
        schema=schema,
        preprocessor=preprocessor,
        classes=classes,
        weights=weights,
        spec=spec,
        profile=context.profile,
        dataset=_dataset_entry(request, context),
        evaluation=_evaluation(context, preprocessor, schema),
    )


def _serving_schema(
    context: _Context, shape: list[int], classes: list[int | str]
) -> tuple[Schema, Preprocessor]:
    target = context.schema.target or TargetSchema(name="target", classes=classes)
    if context.preprocessor is None:
        tensor = context.schema.tensor or TensorSchema(
            shape=shape, dtype="float32", min=-FLOAT32_MAX, max=FLOAT32_MAX
        )
        schema = Schema(kind="tensor", tensor=tensor, target=target)
        return schema, Preprocessor(kind="tensor", input_shape=shape)
    if context.preprocessor.feature_width != int(np.prod(shape)):
        raise ModelError(
            f"the reference data gives {context.preprocessor.feature_width} inputs per row after "
            f"encoding, but the model takes {shape}; check --reference and --schema"
        )
    pre = context.preprocessor.model_copy(update={"input_shape": shape})
    return context.schema.model_copy(update={"target": target}), pre


def _dataset_entry(request: ImportRequest, context: _Context) -> dict[str, Any] | None:
    if context.reference is None:
        return None
    return {
        "sha256": fingerprint(context.reference),
        "source": str(request.reference),
        "rows": len(context.reference),
        "schema": context.schema.model_dump(mode="json"),
    }


def _evaluation(context: _Context, pre: Preprocessor, schema: Schema) -> EvaluationData | None:
    reference = context.reference
    if reference is None or reference.target is None:
        return None
    x = apply_preprocessing(pre, reference.inputs)
    return EvaluationData(x, label_indices(reference.target, schema), reference.inputs)


def candidate_from_module(
    name: str,
    module: torch.nn.Module,
    reference: Dataset,
    *,
    classes: Sequence[int | str] | None = None,
) -> Candidate:
    """A model trained in the user's own PyTorch loop: exported to ONNX, checked against
    torch, described by ``reference`` (its raw features, with labels to evaluate on)."""
    request = ImportRequest(name=name, file=Path("<module>"), classes=classes)
    target = str(reference.target.name) if reference.target is not None else "target"
    schema = infer_schema(reference, target_name=target)
    preprocessor = fit_preprocessor(reference, schema, PreprocessingConfig(numeric="none"))
    context = _Context(schema, preprocessor, build_profile(reference, schema), reference)
    shape = list(preprocessor.input_shape)
    module.eval()
    graph = export_onnx(module, tuple(shape))
    with torch.inference_mode():
        width = int(module(torch.zeros(1, *shape)).shape[-1])
    candidate = _candidate(
        request, context, graph, shape=shape, width=width, weights=weights_bytes(module), spec=None
    )
    probe = np.random.default_rng(0).normal(size=(16, *shape)).astype("float32")
    return replace(
        candidate,
        onnx_parity=check_parity(graph, module, probe),
        dataset=_frame_entry(context, reference),
    )


def _frame_entry(context: _Context, reference: Dataset) -> dict[str, Any]:
    return {
        "sha256": fingerprint(reference),
        "source": reference.origin,
        "rows": len(reference),
        "schema": context.schema.model_dump(mode="json"),
    }
