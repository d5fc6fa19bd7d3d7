"""Load a registered version for serving or evaluation: verified, and with no user code.

Every file is fetched through the artifact store, which checks its digest; the manifest's
signature is checked when ``DNNOPS_SIGNING_KEY`` is set. The ONNX graph holds the whole
model, so nothing is imported or unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml

from dnnops.config import ProjectConfig, parse_config
from dnnops.data.embedding_profile import EmbeddingProfile
from dnnops.data.preprocess import Preprocessor
from dnnops.data.profile import Profile
from dnnops.data.schema import Schema
from dnnops.errors import ModelError, UsageError
from dnnops.evaluate.agreement import AgreementPanel
from dnnops.evaluate.calibration import Calibrator
from dnnops.evaluate.decision import Decision
from dnnops.evaluate.explain import ExplanationReference
from dnnops.evaluate.tiers import CascadeAnswer, TierPlan, run_cascade
from dnnops.registry.manifest import Manifest
from dnnops.registry.versions import Registry, VersionRecord

if TYPE_CHECKING:  # loading a version reads files; only running it needs torch or ONNX
    from dnnops.evaluate.explain import Explainer
    from dnnops.evaluate.report import PredictLogits

Backend = Literal["onnx", "onnx-int8", "torch"]
CALIBRATION = "calibration.json"
EXPLANATIONS = "explanations.json"
EMBEDDINGS = "embeddings.json"
AGREEMENT = "agreement.json"
TIERS = "tiers.json"
CONFIG = "config.yaml"
GRAPH_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "torch": "weights.safetensors"}


@dataclass(frozen=True)
class LoadedVersion:
    record: VersionRecord
    manifest: Manifest
    schema: Schema
    preprocessor: Preprocessor
    profile: Profile | None
    backend: Backend
    graph: bytes
    """ONNX bytes, or safetensors bytes for the torch backend."""
    calibrator: Calibrator | None = None
    """A classifier's confidence calibration (``calibration.json``): what its accuracy is
    estimated from before labels arrive. None for regressors and older versions."""
    explanation_reference: ExplanationReference | None = None
    """Its importance profile on the validation split (``explanations.json``)."""
    tiers: TierPlan | None = None
    """A tiered version's members and thresholds (``tiers.json``); None for one model."""
    tier_graphs: tuple[bytes, ...] = ()
    """The graphs of its tiers after the first (``graph`` is the first's), for ``backend``."""
    embedding: EmbeddingProfile | None = None
    """An image or text model's reference embeddings (``embeddings.json``): its graph
    answers ``embedding`` beside the logits, and live ones are tested against these."""
    agreement: AgreementPanel | None = None
    """A table classifier's agreement panel (``agreement.json``): what its accuracy is
    estimated from when its inputs shift."""

    @property
    def classes(self) -> list[int | str]:
        return self.manifest.classes

    @property
    def is_regression(self) -> bool:
        return self.manifest.task == "regression"

    @property
    def decision(self) -> Decision | None:
        """A binary classifier's tuned threshold (``train.threshold``); None: argmax."""
        stored = self.manifest.decision
        return Decision.model_validate(stored) if stored else None

    @property
    def input_name(self) -> str:
        """The v2 input tensor's name: ``input``, or an imported graph's own."""
        return self.manifest.input_name


def version_config(registry: Registry, loaded: LoadedVersion, *, missing: str) -> ProjectConfig:
    """The project file a trained version was trained with (its ``config.yaml``); a
    version without one (imported) is a ``UsageError`` ending in ``missing``."""
    if not loaded.manifest.has(CONFIG):
        raise UsageError(
            f"{loaded.record.ref} was not trained here (no stored project file); {missing}"
        )
    raw = yaml.safe_load(registry.file(loaded.record, loaded.manifest, CONFIG))
    return parse_config(raw, f"config of {loaded.record.ref}")


def load_version(
    registry: Registry, record: VersionRecord, backend: Backend = "onnx"
) -> LoadedVersion:
    if record.status == "archived":
        raise UsageError(
            f"{record.ref} is archived: it is kept, never served; bring it back with "
            f"dnnops models unarchive {record.ref}"
        )
    manifest = registry.manifest(record)
    if backend not in GRAPH_FILES:
        raise UsageError(f"unknown backend {backend!r}; use onnx, onnx-int8 or torch")
    if backend == "onnx-int8" and not manifest.has(GRAPH_FILES[backend]):
        raise UsageError(
            f"{record.ref} has no INT8 variant; create it with: "
            f"dnnops models export {record.ref} --format onnx-int8"
        )

    # Every file is read, so every digest is checked: a version loads only when it is intact,
    # not just the parts this backend happens to use.
    files = {name: registry.file(record, manifest, name) for name in manifest.files}

    def read_json(name: str) -> Any:
        return json.loads(files[name])

    profile = Profile.model_validate(read_json("profile.json")) if "profile.json" in files else None
    tiers = TierPlan.model_validate(read_json(TIERS)) if TIERS in files else None
    return LoadedVersion(
        record=record,
        manifest=manifest,
        schema=Schema.model_validate(read_json("schema.json")),
        preprocessor=Preprocessor.model_validate(read_json("preprocessing.json")),
        profile=profile,
        backend=backend,
        graph=files[GRAPH_FILES[backend]],
        calibrator=(
            Calibrator.model_validate(read_json(CALIBRATION)) if CALIBRATION in files else None
        ),
        explanation_reference=(
            ExplanationReference.model_validate(read_json(EXPLANATIONS))
            if EXPLANATIONS in files
            else None
        ),
        tiers=tiers,
        tier_graphs=_tier_graphs(record, tiers, files, backend=backend),
        embedding=(
            EmbeddingProfile.model_validate(read_json(EMBEDDINGS)) if EMBEDDINGS in files else None
        ),
        agreement=(
            AgreementPanel.model_validate(read_json(AGREEMENT)) if AGREEMENT in files else None
        ),
    )


def _tier_graphs(
    record: VersionRecord, tiers: TierPlan | None, files: dict[str, bytes], *, backend: Backend
) -> tuple[bytes, ...]:
    if tiers is None:
        return ()
    graphs = []
    for member in tiers.members[1:]:
        name = member.prefix + GRAPH_FILES[backend]
        if name not in files:
            raise UsageError(
                f"tier {member.ref} of {record.ref} has no {GRAPH_FILES[backend]}; serve it "
                "with backend onnx, or tier again after exporting that variant of the member"
            )
        graphs.append(files[name])
    return tuple(graphs)


def explainer_of(registry: Registry, record: VersionRecord) -> Explainer:
    """The explainer of a version (``evaluate.explain.choose_explainer``), from its files,
    each integrity-checked."""
    from dnnops.evaluate.explain import choose_explainer
    from dnnops.registry.onnx_runner import OnnxRunner

    manifest = registry.manifest(record)
    files = manifest.files
    weights = (
        registry.file(record, manifest, "weights.safetensors")
        if "weights.safetensors" in files
        else None
    )
    loaded = load_version(registry, record)
    if loaded.tiers is not None:  # no one set of weights answers: occlusion on the cascade
        return choose_explainer(
            loaded.preprocessor,
            regression=False,
            onnx_predict=make_predictor(loaded, 1),
            spec=None,
            weights=None,
        )
    return choose_explainer(
        loaded.preprocessor,
        regression=loaded.is_regression,
        onnx_predict=OnnxRunner(loaded.graph, 1),
        spec=manifest.spec,
        weights=weights,
    )


def explanation_reference_of(
    registry: Registry, record: VersionRecord
) -> ExplanationReference | None:
    """A version's importance profile on its validation split; None for older versions."""
    manifest = registry.manifest(record)
    if not manifest.has(EXPLANATIONS):
        return None
    return ExplanationReference.model_validate_json(registry.file(record, manifest, EXPLANATIONS))


def calibrator_of(registry: Registry, record: VersionRecord) -> Calibrator | None:
    """A version's calibrator alone (its file integrity-checked), without loading the rest."""
    manifest = registry.manifest(record)
    if not manifest.has(CALIBRATION):
        return None
    data = registry.file(record, manifest, CALIBRATION)
    return Calibrator.model_validate_json(data)


def make_predictor(
    loaded: LoadedVersion, threads: int | None = None, device: str = "cpu"
) -> PredictLogits:
    """Preprocessed inputs -> logits, on the version's backend and ``device`` (a tiered
    version's: each row's from the tier that answered it)."""
    if loaded.tiers is not None:
        cascade = make_cascade(loaded, threads, device=device)
        return lambda x: cascade(x).logits
    spec = loaded.manifest.spec
    return _graph_predictor(loaded, loaded.graph, spec_data=spec, threads=threads, device=device)


def make_cascade(
    loaded: LoadedVersion,
    threads: int | None = None,
    *,
    device: str = "cpu",
    wrap: Callable[[PredictLogits], PredictLogits] = lambda predict: predict,
) -> Callable[[np.ndarray], CascadeAnswer]:
    """A tiered version's predictor, answering which tier took each row and at what cost;
    ``wrap`` is applied to each tier's own predictor (the server halves a batch a GPU has
    no memory for)."""
    plan = loaded.tiers
    if plan is None:
        raise UsageError(f"{loaded.record.ref} is not a tiered version")
    graphs = (loaded.graph, *loaded.tier_graphs)
    predictors = [
        wrap(_graph_predictor(loaded, graph, spec_data=member.spec, threads=threads, device=device))
        for member, graph in zip(plan.members, graphs, strict=True)
    ]
    confidences = [member.confidence for member in plan.members]
    thresholds = plan.thresholds
    return lambda x: run_cascade(predictors, confidences, thresholds, x=x)


def _graph_predictor(
    loaded: LoadedVersion,
    graph: bytes,
    *,
    spec_data: dict[str, Any] | None,
    threads: int | None,
    device: str,
) -> PredictLogits:
    if loaded.backend != "torch":
        from dnnops.gpu import onnx_providers
        from dnnops.registry.onnx_runner import OnnxRunner

        return OnnxRunner(graph, threads, onnx_providers(device))
    return _torch_predictor(loaded, graph, spec_data=spec_data, device=device)


def _torch_predictor(
    loaded: LoadedVersion, weights: bytes, *, spec_data: dict[str, Any] | None, device: str
) -> PredictLogits:
    import torch
    from safetensors.torch import load as load_safetensors

    from dnnops.gpu import torch_device
    from dnnops.models import ModelSpec, build_model

    if spec_data is None or str(spec_data["arch"]).startswith("python:"):
        raise ModelError(
            f"{loaded.record.ref} cannot run on the torch backend without its source code; "
            "serve it with backend onnx"
        )
    model = build_model(ModelSpec.from_dict(spec_data))
    model.load_state_dict(load_safetensors(weights))
    on = torch_device(device, field="serve.device")
    model.to(on).eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            rows = torch.from_numpy(np.ascontiguousarray(x, dtype="float32")).to(on)
            logits: np.ndarray = model(rows).cpu().numpy()
        return logits

    return predict
