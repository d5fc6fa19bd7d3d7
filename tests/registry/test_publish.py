"""Train -> evaluate -> register -> alias -> verify, through the real CLI and files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn.datasets

from dnnops.home import resolve_home
from dnnops.registry.artifacts import ArtifactError
from dnnops.registry.loader import load_version, make_predictor
from dnnops.registry.open import open_registry
from dnnops.registry.versions import IntegrityFailure
from tests.conftest import CliResult, write_project

TRAIN = {"epochs": 12, "lr": 0.005, "seed": 7}
GATES = {
    "baseline": "trivial",  # see tests/conftest.TRIVIAL_BASELINE
    "gates": [
        {"metric": "accuracy", "min": 0.8},
        {"metric": "expected_calibration_error", "max": 0.2},
    ],
}


def _train(cli: Callable[..., CliResult], config: Path, *extra: str) -> dict[str, Any]:
    result = cli("train", "-c", str(config), "--json", *extra)
    assert result.code == 0, result.err
    payload: dict[str, Any] = result.json()
    return payload


def _digits_csv(folder: Path, rows: slice = slice(0, 300)) -> Path:
    frame = sklearn.datasets.load_digits(as_frame=True).frame.iloc[rows]
    path = folder / "digits.csv"
    frame.to_csv(path, index=False)
    return path


def test_trained_model_is_registered_gated_aliased_and_verifiable(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    first = _train(cli, write_project(home.parent, train=TRAIN, evaluate=GATES))
    assert first["version"] == 1 and first["gates_passed"] is True
    assert first["aliases"] == ["candidate", "production"]
    assert {
        "accuracy",
        "macro_f1",
        "roc_auc",
        "expected_calibration_error",
        "robust_accuracy",
        "max_fpr",
        "max_fnr",
        "latency_p50_ms_b1",
        "latency_p99_ms_b64",
    } <= set(first["evaluation"])
    assert cli("models", "verify", "digits@production").code == 0

    shown = cli("models", "show", "digits@1", "--json").json()
    manifest = shown["manifest"]
    assert manifest["run_id"] == first["run_id"]
    assert manifest["dataset_sha256"] == first["dataset_sha256"]
    assert manifest["onnx_parity_max_abs_diff"] <= 1e-4
    assert {
        "weights.safetensors",
        "model.onnx",
        "schema.json",
        "preprocessing.json",
        "profile.json",
        "config.yaml",
        "evaluation.json",
        "calibration.json",  # fitted on the validation split: accuracy estimated before labels
        "explanations.json",  # the validation split's importance profile: attribution drift
        "agreement.json",  # members on halves of the features: accuracy estimated under shift
    } == set(manifest["files"])
    assert manifest["spec"]["arch"] == "mlp"
    human = cli("models", "show", "digits@1")
    assert "lineage" in human.out and "gates" in human.out


def test_a_failing_gate_registers_but_leaves_candidate_alone(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    _train(cli, write_project(home.parent, train=TRAIN, evaluate=GATES))
    strict = {"baseline": "trivial", "gates": [{"metric": "accuracy", "min": 0.9999}]}
    failed = cli("train", "-c", str(write_project(home.parent, train=TRAIN, evaluate=strict)))
    assert failed.code == 1  # INTERFACE.md: a check failed
    assert "digits@2 is registered but failed its gates (accuracy" in failed.err
    assert "< 0.9999" in failed.err
    second = cli("models", "show", "digits@2", "--json").json()
    assert second["version"] == 2
    assert second["gates_passed"] is False
    assert second["aliases"] == []
    registry = open_registry(resolve_home(home))
    assert registry.aliases("digits") == {"candidate": 1, "production": 1}
    report = json.loads(
        registry.file(
            registry.resolve("digits", 2),
            registry.manifest(registry.resolve("digits", 2)),
            "evaluation.json",
        )
    )
    assert report["champion"]["version"] == 1  # compared with production on the same rows

    refused = cli("rollout", "start", "digits@2")
    assert refused.code == 1 and "failed its evaluation gates (accuracy" in refused.err
    assert "--force" in refused.err
    forced = cli("rollout", "start", "digits@2", "--force", "--json")
    assert forced.code == 0, forced.err
    audit = cli("models", "audit", "digits", "--json").json()
    assert any(e["action"] == "rollout_forced" and e["details"]["version"] == 2 for e in audit)
    unforced = cli("models", "alias", "digits", "2", "production")
    assert unforced.code == 1 and "alias it anyway with --force" in unforced.err
    assert cli("models", "alias", "digits", "2", "production", "--force").code == 0
    moves = [e["details"] for e in registry.audit_log("digits") if e["action"] == "alias"]
    assert moves[0] == {"alias": "production", "from": 1, "to": 2, "reason": "dnnops models alias"}
    audit = cli("models", "audit", "digits", "--json").json()
    assert [e["action"] for e in audit].count("register") == 2


def test_tampering_with_any_artifact_fails_verify_and_load(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    _train(cli, write_project(home.parent, train=TRAIN, evaluate=GATES))
    registry = open_registry(resolve_home(home))
    record = registry.resolve("digits", "production")
    manifest = registry.manifest(record)
    targets = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    targets["manifest"] = record.manifest_sha256
    for name, digest in targets.items():
        path = registry.store.local_path(digest)
        assert path is not None
        original = path.read_bytes()
        path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])
        try:
            result = cli("models", "verify", "digits@production")
            assert result.code == 1, name
            assert "integrity check" in result.out, name
            with pytest.raises(ArtifactError):
                load_version(registry, record)
        finally:
            path.write_bytes(original)
    assert cli("models", "verify", "digits@production").code == 0


def test_signed_manifests(
    home: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    _train(cli, write_project(home.parent))  # unsigned version 1
    monkeypatch.setenv("DNNOPS_SIGNING_KEY", "secret-one")
    _train(cli, write_project(home.parent))
    assert cli("models", "verify", "digits@2").code == 0
    unsigned = cli("models", "verify", "digits@1")
    assert unsigned.code == 1 and "unsigned" in unsigned.out
    monkeypatch.setenv("DNNOPS_SIGNING_KEY", "another-key")
    wrong = cli("models", "verify", "digits@2")
    assert wrong.code == 1 and "wrong signature" in wrong.out
    registry = open_registry(resolve_home(home))
    with pytest.raises(IntegrityFailure):
        load_version(registry, registry.resolve("digits", 2))


def test_serving_load_needs_no_user_code_and_matches_the_report(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    model = {"arch": "cnn", "input_shape": [1, 8, 8], "params": {"channels": [8]}}
    payload = _train(
        cli, write_project(home.parent, model=model, train=TRAIN, evaluate=GATES), "--int8"
    )
    registry = open_registry(resolve_home(home))
    record = registry.resolve("digits", payload["version"])
    manifest = registry.manifest(record)
    assert "model.int8.onnx" in manifest["files"]
    assert abs(manifest["int8"]["accuracy_change"]) < 0.05
    csv = _digits_csv(home.parent)
    for backend in ("onnx", "onnx-int8", "torch"):
        loaded = load_version(registry, record, backend)
        import pandas as pd

        from dnnops.data.preprocess import apply_preprocessing

        frame = pd.read_csv(csv).drop(columns=["target"])
        logits = make_predictor(loaded)(apply_preprocessing(loaded.preprocessor, frame))
        accuracy = float((logits.argmax(axis=1) == pd.read_csv(csv)["target"].to_numpy()).mean())
        assert accuracy > 0.85, backend
    evaluated = cli("eval", "digits@1", "--data", str(csv), "--json")
    assert evaluated.code == 0, evaluated.err
    assert evaluated.json()["samples"] == 300
    stored = cli("eval", "digits@production", "--json").json()
    assert stored["gates_passed"] is True


def test_export_writes_verified_graphs(home: Path, cli: Callable[..., CliResult]) -> None:
    _train(cli, write_project(home.parent, train=TRAIN, evaluate=GATES))
    out = home.parent / "digits.onnx"
    assert cli("models", "export", "digits@1", "--format", "onnx", "--out", str(out)).code == 0
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out))
    logits = session.run(None, {"input": np.zeros((3, 64), "float32")})[0]
    assert logits.shape == (3, 10)
    int8_out = home.parent / "digits.int8.onnx"
    csv = _digits_csv(home.parent)
    result = cli(
        "models",
        "export",
        "digits@1",
        "--format",
        "onnx-int8",
        "--out",
        str(int8_out),
        "--data",
        str(csv),
    )
    assert result.code == 0, result.err
    assert "accuracy_change" in result.out
    assert int8_out.stat().st_size < out.stat().st_size
    assert cli("models", "verify", "digits@1").code == 0
    assert cli("models", "export", "digits@1", "--format", "tflite").code == 2
    listed = cli("models", "list", "--json").json()
    assert listed == [
        {"name": "digits", "latest_version": 1, "aliases": {"candidate": 1, "production": 1}}
    ]


def test_group_column_gives_per_group_accuracy_and_the_gap(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    from tests.data.conftest import people_frame

    frame = people_frame(rows=400)
    frame["region"] = np.where(frame["age"] > 50, "north", "south")
    csv = home.parent / "people.csv"
    frame.to_csv(csv, index=False)
    data = {"source": str(csv), "target": "label", "group": "region"}
    gates = {"baseline": "trivial", "gates": [{"metric": "group_accuracy_gap", "max": 1.0}]}
    payload = _train(cli, write_project(home.parent, data=data, train=TRAIN, evaluate=gates))
    assert 0.0 <= payload["evaluation"]["group_accuracy_gap"] <= 1.0
    registry = open_registry(resolve_home(home))
    record = registry.resolve("digits", payload["version"])
    report = json.loads(registry.file(record, registry.manifest(record), "evaluation.json"))
    assert set(report["group_accuracy"]) == {"north", "south"}
    gap = max(report["group_accuracy"].values()) - min(report["group_accuracy"].values())
    assert abs(gap - payload["evaluation"]["group_accuracy_gap"]) < 1e-12
    schema = json.loads(registry.file(record, registry.manifest(record), "schema.json"))
    assert "region" not in [c["name"] for c in schema["columns"]]  # a group is not a feature
    assert schema["ignored"] == ["region"]


def test_data_validate_against_a_registered_version(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    _train(cli, write_project(home.parent, train=TRAIN, evaluate=GATES))
    csv = _digits_csv(home.parent)
    valid = cli("data", "validate", str(csv), "--model", "digits@production", "--json")
    assert valid.code == 0, valid.out
    assert valid.json()["schema_from"] == "digits@1"
    import pandas as pd

    broken = pd.read_csv(csv).drop(columns=["pixel_3_3"])
    broken.to_csv(home.parent / "broken.csv", index=False)
    result = cli(
        "data", "validate", str(home.parent / "broken.csv"), "--model", "digits@1", "--json"
    )
    assert result.code == 1
    assert [(f["column"], f["rule"]) for f in result.json()["findings"]] == [
        ("pixel_3_3", "missing_column")
    ]
