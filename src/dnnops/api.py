"""The Python API: what the CLI does, from a notebook or a script.

``load`` gives the same verified artifacts, input policy, preprocessing and ONNX graph
the server runs; ``log_model`` registers a model trained in your own PyTorch loop;
``Project`` trains and evaluates a dnnops.yaml; ``Client`` talks to a running server.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnnops.config import ProjectConfig, ServeConfig, load_config
from dnnops.data.schema import Schema
from dnnops.errors import DnnopsError, UsageError
from dnnops.home import resolve_home

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from dnnops.registry.loader import LoadedVersion
    from dnnops.registry.publish import Published

Rows = Any
"""A DataFrame, a list of dicts keyed by feature name, a list of rows in schema order, or
an array."""


class Model:
    """A registered version, loaded and verified, ready to predict in this process."""

    def __init__(self, loaded: LoadedVersion, policy: ServeConfig | None = None) -> None:
        from dnnops.inference.adapters import adapter_for
        from dnnops.inference.predictor import Predictor

        self._loaded = loaded
        self._adapter = adapter_for(loaded.schema, policy or ServeConfig(), loaded.preprocessor)
        self._predictor = Predictor.create(loaded)
        self.name = loaded.record.model
        self.version = loaded.record.version
        self.classes = loaded.classes

    @property
    def schema(self) -> Schema:
        return self._loaded.schema

    @property
    def task(self) -> str:
        return "regression" if self._loaded.is_regression else "classification"

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """Class probabilities, (N, classes), columns in ``classes`` order."""
        if self._loaded.is_regression:
            raise UsageError(f"{self.name}@{self.version} is a regression: use predict()")
        return self._outputs(rows)

    def predict(self, rows: Rows) -> np.ndarray:
        """Predicted labels, as they were in the training data (strings stay strings), or
        numbers for a regression."""
        return self._predictor.answers(self._outputs(rows))

    def _outputs(self, rows: Rows) -> np.ndarray:
        """Probabilities or values (``inference.predictor``): never logits, never NaN."""
        from dnnops.data.media.encode import CellError
        from dnnops.data.preprocess import apply_preprocessing

        try:
            x = apply_preprocessing(self._loaded.preprocessor, self._checked(rows), inference=True)
        except CellError as exc:  # a bad image or text: the caller's, named by instance
            raise UsageError(str(exc)) from None
        return self._predictor(x)

    def _checked(self, rows: Rows) -> Any:
        """``rows`` held to the server's schema and input policy: a DataFrame column by
        column (as batch prediction does), anything else as the v1 route's instances."""
        from dnnops.data.policy import PolicyViolation, enforce_frame
        from dnnops.data.table import ColumnValueError
        from dnnops.inference.media_inputs import MediaAdapter

        loaded = self._loaded
        try:
            if isinstance(self._adapter, MediaAdapter):
                return self._adapter.from_python(_media_values(rows, self._adapter.name)).raw
            if _is_frame(rows) and loaded.schema.kind == "table":
                policy = self._adapter.policy
                return enforce_frame(rows, loaded.schema, loaded.preprocessor, policy=policy)[0]
            return self._adapter.from_v1(_instances(rows)).raw
        except (PolicyViolation, ColumnValueError, DnnopsError) as exc:
            raise UsageError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Model({self.name}@{self.version}, classes={self.classes})"


def _media_values(rows: Any, column: str) -> list[Any]:
    """An image or text model's instances: a DataFrame's column, a list, or one value."""
    if _is_frame(rows):
        if column not in rows.columns:
            raise UsageError(
                f"the frame has no column {column!r}; its columns: {list(rows.columns)}"
            )
        return list(rows[column])
    if isinstance(rows, list | tuple):
        return list(rows)
    return [rows]


def _client_instances(rows: Rows) -> list[Any]:
    from dnnops.inference.media_inputs import is_pil_image

    if isinstance(rows, bytes | Path) or is_pil_image(rows):  # one image
        return [rows]
    return _instances(rows)


def _on_the_wire(value: object) -> object:
    """An image the caller holds, as v1's ``{"b64": ...}``; anything else as it is."""
    from dnnops.inference.media_inputs import is_pil_image, png_bytes

    if isinstance(value, Path):
        value = value.read_bytes()
    elif is_pil_image(value):
        value = png_bytes(value)
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {key: _on_the_wire(item) for key, item in value.items()}
    return value


def _is_frame(rows: Rows) -> bool:
    return hasattr(rows, "to_dict") and hasattr(rows, "columns")


def _instances(rows: Rows) -> list[Any]:
    """What the server's v1 route would receive for ``rows``."""
    if _is_frame(rows):
        frame = rows.astype(object).where(rows.notna(), None)
        return list(frame.to_dict(orient="records"))
    if isinstance(rows, np.ndarray):
        return list(rows.tolist())
    if isinstance(rows, Mapping):
        return [dict(rows)]
    if isinstance(rows, Sequence) and not isinstance(rows, str):
        return list(rows)
    raise UsageError(
        f"rows must be a DataFrame, a list of dicts or rows, or an array; got {type(rows).__name__}"
    )


def load(ref: str, home: str | Path | None = None) -> Model:
    """``NAME@REF`` (a version number or an alias) from the registry, verified."""
    from dnnops.registry.loader import load_version
    from dnnops.registry.open import open_registry

    registry = open_registry(resolve_home(Path(home) if home is not None else None))
    return Model(load_version(registry, registry.resolve_ref(ref)))


def log_model(
    module: torch.nn.Module,
    *,
    name: str,
    reference: pd.DataFrame | np.ndarray,
    target: str | np.ndarray | Sequence[Any] | None = None,
    classes: Sequence[int | str] | None = None,
    home: str | Path | None = None,
    aliases: Sequence[str] = (),
) -> int:
    """Register a model trained in your own PyTorch loop as a new version: ONNX graph
    (checked against torch), safetensors weights, schema and drift profile from
    ``reference`` (the raw features the module takes), evaluated when labels are given
    (``target``: a column of ``reference`` or an array). Returns the version number."""
    from dnnops.config import EvaluateConfig
    from dnnops.registry.importer import candidate_from_module
    from dnnops.registry.open import open_registry
    from dnnops.registry.publish import publish

    dataset = _reference_dataset(reference, target)
    candidate = candidate_from_module(name, module, dataset, classes=classes)
    registry = open_registry(resolve_home(Path(home) if home is not None else None))
    record = publish(registry, candidate, EvaluateConfig()).record
    for alias in aliases:
        registry.set_alias(name, alias, record.version, reason="dnnops.log_model")
    return record.version


def _reference_dataset(reference: Any, target: Any) -> Any:
    import pandas as pd

    from dnnops.data.dataset import Dataset

    labels = None
    if isinstance(target, str):
        if not isinstance(reference, pd.DataFrame) or target not in reference.columns:
            raise UsageError(f"target {target!r} is not a column of the reference DataFrame")
        labels = reference[target]
        reference = reference.drop(columns=[target])
    elif target is not None:
        labels = pd.Series(np.asarray(target), name="target")
    if isinstance(reference, pd.DataFrame):
        return Dataset(reference.reset_index(drop=True), _reset(labels), None, "log_model")
    array = np.asarray(reference, dtype="float32")
    return Dataset(array, _reset(labels), None, "log_model")


def _reset(labels: Any) -> Any:
    return None if labels is None else labels.reset_index(drop=True)


@dataclass
class Project:
    """A dnnops.yaml: ``train()`` trains, evaluates and registers (as ``dnnops train``)."""

    path: str | Path = "dnnops.yaml"
    home: str | Path | None = None

    @property
    def config(self) -> ProjectConfig:
        return load_config(Path(self.path))

    def train(self) -> Published:
        """Train and register; the returned record says the version and whether gates passed."""
        from dnnops.registry.from_run import candidate_from_run, check_before_training
        from dnnops.registry.open import open_registry, open_runs
        from dnnops.registry.publish import publish
        from dnnops.registry.starting import version_weights
        from dnnops.train.pipeline import train_project

        home = resolve_home(Path(self.home) if self.home is not None else None)
        config = self.config
        check_before_training(config)
        registry = open_registry(home)
        outcome = train_project(
            config, home.runs_dir, open_runs(home), weights=version_weights(registry)
        )
        return publish(registry, candidate_from_run(outcome), config.evaluate)

    def evaluate(self, ref: str, data: str | Path) -> dict[str, Any]:
        """Metrics and gates of ``NAME@REF`` on a labeled file, as ``dnnops eval --json``."""
        from dnnops.data.prepare import label_indices
        from dnnops.data.preprocess import apply_preprocessing
        from dnnops.data.sources import load_source
        from dnnops.evaluate.report import apply_gates, evaluate_predictions, evaluate_regression
        from dnnops.registry.loader import load_version, make_predictor
        from dnnops.registry.open import open_registry

        home = resolve_home(Path(self.home) if self.home is not None else None)
        registry = open_registry(home)
        loaded = load_version(registry, registry.resolve_ref(ref))
        target = loaded.schema.target.name if loaded.schema.target else "target"
        dataset = load_source(str(data), target, drop=loaded.schema.ignored)
        x = apply_preprocessing(loaded.preprocessor, dataset.inputs)
        y = label_indices(dataset.target, loaded.schema)
        predictor = make_predictor(loaded)
        report = (
            evaluate_regression(predictor, x, y)
            if loaded.is_regression
            else evaluate_predictions(
                predictor, x, y, classes=loaded.classes, decision=loaded.decision
            )
        )
        return apply_gates(report, self.config.evaluate.gates).model_dump(mode="json")


class Client:
    """A running server, over HTTP: the v1 routes and the admin ones."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def predict(self, name: str, instances: Rows) -> dict[str, Any]:
        """``{"predictions", "probabilities", "prediction_ids", "model_version"}``. For an
        image model, PIL images, ``Path`` objects and bytes are sent as ``{"b64": ...}``;
        a string is sent as it is (a text: pass a ``Path`` for an image file)."""
        body = {"instances": [_on_the_wire(value) for value in _client_instances(instances)]}
        return self._call("POST", f"/v1/models/{name}:predict", body)

    def feedback(self, labels: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """Ground truth for earlier predictions: ``{prediction_id: label}`` or pairs. The
        answer counts them (``accepted``, ``refused`` by reason, ``relabeled``) and gives
        each one's status in ``items``: a label for an unknown prediction, or outside the
        version's classes, is refused, not logged."""
        pairs = labels.items() if isinstance(labels, Mapping) else labels
        body = {"labels": [{"prediction_id": pid, "label": label} for pid, label in pairs]}
        return self._call("POST", "/v1/feedback", body)

    def outcomes(
        self, name: str, values: Mapping[str, float] | Sequence[tuple[str, float]]
    ) -> dict[str, Any]:
        """Business outcomes of the KPI ``name`` (one of the server's ``monitor.kpis``) for
        earlier predictions: ``{prediction_id: value}`` or pairs. The answer counts them and
        gives each one's status in ``items`` (an unknown prediction is refused)."""
        pairs = values.items() if isinstance(values, Mapping) else values
        body = {"outcomes": [{"prediction_id": pid, "name": name, "value": v} for pid, v in pairs]}
        return self._call("POST", "/v1/outcomes", body)

    def rollout(self, name: str, version: int, **policy: Any) -> dict[str, Any]:
        """Start a rollout (admin token): ``steps``, ``mode``, ``interval``, ``force``..."""
        return self._call("POST", f"/v1/endpoints/{name}/rollout", {"version": version, **policy})

    def monitor(self, name: str, since: str = "1h") -> dict[str, Any]:
        return self._call("GET", f"/v1/monitor/{name}?since={since}", None)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any) -> dict[str, Any]:
        response = self._http.request(method, path, json=body)
        payload: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise DnnopsError(
                f"{method} {path} answered {response.status_code}: {payload.get('error', payload)}"
            )
        return payload
