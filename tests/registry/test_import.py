"""Bring-your-own-model: ONNX files and torch weights become versions like trained ones."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn.datasets
import torch
from safetensors.torch import save_file

from dnnops.data.preprocess import apply_preprocessing
from dnnops.home import resolve_home
from dnnops.models import ModelSpec, build_model
from dnnops.registry.export import export_onnx
from dnnops.registry.loader import load_version, make_predictor
from dnnops.registry.open import open_registry
from tests.conftest import CliResult


def _wine(folder: Path) -> tuple[Path, pd.DataFrame]:
    frame = sklearn.datasets.load_wine(as_frame=True).frame
    path = folder / "wine.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _trained_mlp(frame: pd.DataFrame) -> torch.nn.Module:
    """A model trained outside dnnops, on raw (unscaled) wine features."""
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (13,), 3, {"hidden": [32], "dropout": 0.0}))
    x = torch.tensor(frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    y = torch.tensor(frame["target"].to_numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _served_logits(home: Path, ref: str, frame: pd.DataFrame) -> np.ndarray:
    registry = open_registry(resolve_home(home))
    loaded = load_version(registry, registry.resolve_ref(ref))
    x = apply_preprocessing(loaded.preprocessor, frame.drop(columns=["target"]))
    return make_predictor(loaded)(x)


def test_import_onnx_with_reference_data(home: Path, cli: Callable[..., CliResult]) -> None:
    csv, frame = _wine(home.parent)
    model = build_model(ModelSpec("mlp", (13,), 3, {"hidden": [8]})).eval()
    onnx_path = home.parent / "wine.onnx"
    onnx_path.write_bytes(export_onnx(model, (13,)))

    result = cli("models", "import", "wine", str(onnx_path), "--reference", str(csv), "--json")

    assert result.code == 0, result.err
    payload = result.json()
    assert payload["version"] == 1 and "accuracy" in payload["metrics"]
    # evaluated, but no gates were set: no verdict, and no alias moves on its own
    assert payload["gates_passed"] is None and payload["aliases"] == []
    asked = cli("models", "import", "wine", str(onnx_path), "--alias", "production", "--json")
    assert asked.code == 0, asked.err
    assert asked.json()["version"] == 2 and asked.json()["aliases"] == ["production"]
    assert cli("models", "verify", "wine@1").code == 0
    served = _served_logits(home, "wine@1", frame)
    with torch.inference_mode():
        expected = model(
            torch.tensor(frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
        )
    np.testing.assert_allclose(served, expected.numpy(), atol=1e-4)
    shown = cli("models", "show", "wine@1", "--json").json()["manifest"]
    assert shown["source"] == "imported"
    assert {"schema.json", "profile.json", "model.onnx"} <= set(shown["files"])


def test_import_torch_weights_with_an_architecture(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    csv, frame = _wine(home.parent)
    model = _trained_mlp(frame)
    weights = home.parent / "wine.safetensors"
    save_file(model.state_dict(), str(weights))
    pt = home.parent / "wine.pt"
    torch.save(model.state_dict(), pt)

    for name, path in (("wine-st", weights), ("wine-pt", pt)):
        result = cli(
            "models",
            "import",
            name,
            str(path),
            "--arch",
            "mlp",
            "--param",
            "hidden=[32]",
            "--param",
            "dropout=0.0",
            "--reference",
            str(csv),
            "--json",
        )
        assert result.code == 0, result.err
        assert cli("models", "verify", f"{name}@1").code == 0
        shown = cli("models", "show", f"{name}@1", "--json").json()["manifest"]
        assert shown["onnx_parity_max_abs_diff"] <= 1e-4
        assert "weights.safetensors" in shown["files"]
    # imported numbers pass through unchanged: the served graph computes what torch computes
    served = _served_logits(home, "wine-st@1", frame)
    with torch.inference_mode():
        x = torch.tensor(frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
        expected = model(x)
    np.testing.assert_allclose(served, expected.numpy(), rtol=1e-5, atol=1e-4)


def test_import_refuses_pickled_objects_and_mismatched_weights(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    csv, frame = _wine(home.parent)
    evil = home.parent / "evil.pt"
    evil.write_bytes(pickle.dumps({"weights": Path("/etc/passwd")}))
    refused = cli("models", "import", "evil", str(evil), "--arch", "mlp", "--reference", str(csv))
    assert refused.code == 1
    assert "weights_only" in refused.err
    weights = home.parent / "w.safetensors"
    save_file(_trained_mlp(frame).state_dict(), str(weights))
    wrong = cli(
        "models",
        "import",
        "bad",
        str(weights),
        "--arch",
        "mlp",
        "--param",
        "hidden=[16]",
        "--reference",
        str(csv),
    )
    assert wrong.code == 1
    assert "does not fit" in wrong.err
    assert "net.1.weight [16, 13]" in wrong.err  # the expected layout, to rename against
    no_arch = cli("models", "import", "bad", str(weights), "--reference", str(csv))
    assert no_arch.code == 2 and "--arch" in no_arch.err


def test_import_onnx_without_data_uses_the_graph_signature(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    model = build_model(ModelSpec("cnn", (1, 8, 8), 10, {"channels": [4]})).eval()
    path = home.parent / "digits.onnx"
    path.write_bytes(export_onnx(model, (1, 8, 8)))
    result = cli("models", "import", "imgs", str(path), "--json")
    assert result.code == 0, result.err
    assert result.json()["gates_passed"] is None  # nothing to evaluate on: no aliases
    registry = open_registry(resolve_home(home))
    loaded = load_version(registry, registry.resolve("imgs", 1))
    assert loaded.schema.tensor is not None and loaded.schema.tensor.shape == [1, 8, 8]
    assert loaded.classes == list(range(10))
    logits = make_predictor(loaded)(np.zeros((2, 1, 8, 8), "float32"))
    assert logits.shape == (2, 10)


def _renamed_input(graph: bytes, name: str) -> bytes:
    """A graph whose input is called ``name``, as exporters other than ours name it."""
    import onnx

    model = onnx.load_from_string(graph)
    old = model.graph.input[0].name
    model.graph.input[0].name = name
    for node in model.graph.node:
        node.input[:] = [name if i == old else i for i in node.input]
    return model.SerializeToString()


def test_an_imported_graph_keeps_its_input_name_on_the_wire(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    from tests.serve.conftest import start_server

    model = build_model(ModelSpec("mlp", (4,), 3, {"hidden": [8]})).eval()
    path = home.parent / "sk.onnx"
    path.write_bytes(_renamed_input(export_onnx(model, (4,)), "float_input"))
    result = cli("models", "import", "sk", str(path), "--alias", "production", "--json")
    assert result.code == 0, result.err
    shown = cli("models", "show", "sk@1", "--json").json()
    assert shown["manifest"]["input"]["name"] == "float_input"
    server = start_server(home, "--model", "sk@production")
    try:
        with server.client() as http:
            metadata = http.get("/v2/models/sk").json()
            assert metadata["inputs"][0]["name"] == "float_input"
            tensor = {"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [0.1] * 4}
            answered = http.post("/v2/models/sk/infer", json={"inputs": [tensor]})
            assert answered.status_code == 200, answered.text
            wrong = http.post("/v2/models/sk/infer", json={"inputs": [{**tensor, "name": "input"}]})
            assert wrong.status_code == 422 and "'float_input'" in wrong.json()["error"]
    finally:
        server.stop()


def test_a_plain_sequential_imports_by_layer_order(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    csv, frame = _wine(home.parent)
    torch.manual_seed(0)
    mine = torch.nn.Sequential(torch.nn.Linear(13, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    weights = home.parent / "seq.safetensors"
    save_file(mine.state_dict(), str(weights))  # keys 0.weight, 2.weight: not the MLP's names
    result = cli(
        "models", "import", "seq", str(weights), "--arch", "mlp", "--param", "hidden=[32]",
        "--param", "dropout=0.0", "--reference", str(csv), "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    served = _served_logits(home, "seq@1", frame)
    with torch.inference_mode():
        x = torch.tensor(frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
        expected = mine(x)
    np.testing.assert_allclose(served, expected.numpy(), rtol=1e-5, atol=1e-4)
