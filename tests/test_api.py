"""The Python API from outside, as a notebook would use it: Project, load, log_model,
Client; on data the test generates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dnnops
from dnnops.errors import UsageError
from tests.serve.conftest import start_server
from tests.userdata import SPECIES, penguins_frame, project_file, write_csv


def test_project_train_then_load_predicts_labels_by_name(tmp_path: Path, home: Path) -> None:
    frame = penguins_frame()
    source = write_csv(frame, tmp_path / "penguins.csv")
    config = project_file(tmp_path / "dnnops.yaml", "penguins", source, "species")
    assert dnnops.load_config(str(config)).name == "penguins"  # a str path works

    published = dnnops.Project(str(config)).train()
    assert published.record.version == 1

    model = dnnops.load("penguins@production")
    features = frame.drop(columns=["species"])
    predicted = model.predict(features)  # a DataFrame with NaN and None in it
    assert set(predicted) <= set(SPECIES)
    assert (predicted == frame["species"].to_numpy()).mean() > 0.9
    as_dicts = features.head(5).astype(object).where(features.head(5).notna(), None)
    assert list(model.predict(as_dicts.to_dict(orient="records"))) == list(predicted[:5])
    assert model.predict_proba(features.head(3)).shape == (3, len(SPECIES))
    assert [c.name for c in model.schema.columns] == list(features.columns)
    with pytest.raises(UsageError, match="feature 'body_mass_g' must be a number"):
        model.predict([{**features.iloc[0].to_dict(), "body_mass_g": "heavy"}])
    typo = features.head(3).astype({"body_mass_g": object})
    typo.loc[1, "body_mass_g"] = "heavy"  # a DataFrame is held to the same rule
    with pytest.raises(UsageError, match="feature 'body_mass_g' must be a number, got 'heavy'"):
        model.predict(typo)


def _blobs(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    label = rng.choice(["no", "yes"], rows)
    shift = np.where(label == "yes", 2.0, -2.0)
    return pd.DataFrame({"a": rng.normal(shift, 1.0), "b": rng.normal(-shift, 1.0), "label": label})


def _own_loop(frame: pd.DataFrame) -> torch.nn.Module:
    """A model trained the way a user would, outside dnnops."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32)
    y = torch.tensor((frame["label"] == "yes").to_numpy().astype("int64"))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        optimizer.step()
    return module.eval()


def test_log_model_registers_a_users_own_module_which_then_serves(home: Path) -> None:
    frame = _blobs()
    module = _own_loop(frame)
    version = dnnops.log_model(
        module, name="blobs", reference=frame, target="label", classes=["no", "yes"]
    )
    assert version == 1
    loaded = dnnops.load("blobs@1")
    with torch.inference_mode():
        expected = module(torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32))
    mine = np.array(["no", "yes"], dtype=object)[expected.argmax(1).numpy()]
    assert list(loaded.predict(frame[["a", "b"]])) == list(mine)

    server = start_server(home, "--model", "blobs@1")
    try:
        with dnnops.Client(server.url) as client:
            answer = client.predict("blobs", frame[["a", "b"]].head(4))
            assert answer["predictions"] == list(mine[:4])
            pairs = dict(zip(answer["prediction_ids"], frame["label"].head(4), strict=True))
            answer = client.feedback(pairs)
            assert (answer["accepted"], answer["errors"]) == (4, False)
            assert {i["status"] for i in answer["items"]} == {"accepted"}
            assert client.monitor("blobs")["versions"]
    finally:
        server.stop()
