"""Sensitive features (``data.schema.sensitive``): served as usual, logged as keyed hashes
or not at all (``serve.log.redact``), never tested for drift; on the user's own CSV."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pandas as pd

from dnnops.home import resolve_home
from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.predlog.redaction import HASH_PREFIX
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_registry
from dnnops.retrain.labeled import labeled_rows
from tests.serve.conftest import start_server
from tests.serve.test_user_data import dnnops
from tests.userdata import penguins_frame, project_file, write_csv

SENSITIVE = ["body_mass_g", "island"]
ROWS = [
    {"bill_length_mm": 39.0, "body_mass_g": 3651.0, "island": "Dream", "sex": "female"},
    {"bill_length_mm": 47.0, "body_mass_g": 5077.0, "island": "Biscoe", "sex": "male"},
    {"bill_length_mm": 38.0, "body_mass_g": 3651.0, "island": "Dream", "sex": None},
]


def _project(folder: Path, redact: str) -> Path:
    source = write_csv(penguins_frame(), folder / "penguins.csv")
    return project_file(
        folder / f"{redact}.yaml",
        "penguins",
        source,
        "species",
        data={"source": str(source), "target": "species", "schema": {"sensitive": SENSITIVE}},
        serve={"log": {"redact": redact}},
    )


def test_sensitive_features_are_logged_as_keyed_hashes_and_left_out_of_drift(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    config = _project(tmp_path, "hash")
    dnnops(home, "train", "-c", str(config), "--quiet", "--json")
    server = start_server(home, "-c", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answer = http.post("/v1/models/penguins:predict", json={"instances": ROWS})
            assert answer.status_code == 200, answer.text
            ids = answer.json()["prediction_ids"]
            labels = [{"prediction_id": i, "label": "Adelie"} for i in ids]
            assert http.post("/v1/feedback", json={"labels": labels}).json()["accepted"] == 3
            report = http.get("/v1/monitor/penguins", params={"since": "1h"}).json()
    finally:
        server.stop()
    logged = {r.id: r.inputs for r in read_predictions(home / "logs" / PREDICTIONS)}
    first, second, third = (logged[i] for i in ids)
    assert first["bill_length_mm"] == 39.0 and first["sex"] == "female", "the rest as sent"
    for name in SENSITIVE:
        assert str(first[name]).startswith(HASH_PREFIX)
    assert first["island"] == third["island"] != second["island"], "equal values hash equal"
    assert first["body_mass_g"] == third["body_mass_g"]
    raw = b"".join(p.read_bytes() for p in (home / "logs" / PREDICTIONS).glob("*.log"))
    assert b'":3651' not in raw and b"Biscoe" not in raw, "no raw sensitive value on disk"
    key = home / "redact.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    [section] = report["versions"]
    tested = {f["feature"] for f in section["drift"]["features"]}
    assert tested == {"bill_length_mm", "sex"}, "sensitive features are not drift-tested"
    registry = open_registry(resolve_home(home))
    schema = load_version(registry, registry.resolve("penguins", "production")).schema
    learnable = labeled_rows(home / "logs", "penguins", schema, target="species")
    assert learnable.empty, "a hashed feature cannot be learned from: retraining skips the row"


def test_redact_drop_leaves_them_out_of_batch_prediction_logs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = _project(tmp_path, "drop")
    dnnops(home, "train", "-c", str(config), "--quiet", "--json")
    batch = tmp_path / "batch.csv"
    pd.DataFrame(ROWS).to_csv(batch, index=False)
    out = tmp_path / "out.csv"
    dnnops(home, "predict", str(batch), "--model", "penguins@production", "--out", str(out),
           "-c", str(config), "--log", "--quiet")  # fmt: skip
    inputs = [r.inputs for r in read_predictions(home / "logs" / PREDICTIONS)]
    assert len(inputs) == 3
    assert all(set(row) == {"bill_length_mm", "sex"} for row in inputs)
    assert not (home / "redact.key").exists(), "dropping needs no key"


def test_a_sensitive_column_the_data_lacks_is_named() -> None:
    import pytest

    from dnnops.data.dataset import Dataset
    from dnnops.data.schema import infer_schema
    from dnnops.errors import DataError

    frame = penguins_frame(40)
    dataset = Dataset(frame.drop(columns=["species"]), frame["species"], None, "test")
    with pytest.raises(DataError, match=r"data.schema.sensitive .*\['email'\]"):
        infer_schema(dataset, target_name="species", sensitive=["email"])
    schema = infer_schema(dataset, target_name="species", sensitive=["island"])
    assert schema.sensitive_names == {"island"}
