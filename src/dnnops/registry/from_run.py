"""A finished training run as a registry ``Candidate``: export, parity check, lineage."""

from __future__ import annotations

import numpy as np

from dnnops.data.schema import category_key
from dnnops.models.weights import weights_bytes
from dnnops.registry.export import check_parity, export_onnx
from dnnops.registry.publish import Candidate, EvaluationData
from dnnops.train.pipeline import TrainOutcome


def candidate_from_run(outcome: TrainOutcome) -> Candidate:
    """Export the run's model to ONNX and check it against torch on the test set."""
    prepared = outcome.prepared
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
        evaluation=EvaluationData(prepared.test.x, prepared.test.y, test_part.inputs, groups),
        calibration=EvaluationData(
            prepared.valid.x, prepared.valid.y, prepared.dataset.take(prepared.split.valid).inputs
        ),
    )
