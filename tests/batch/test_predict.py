"""dnnops predict: a file in, a file out, chunk by chunk, under the server's input policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import dnnops
from tests.conftest import CliResult
from tests.userdata import SPECIES, penguins_frame, project_file, write_csv


def _trained(tmp_path: Path) -> tuple[Path, Path]:
    source = write_csv(penguins_frame(), tmp_path / "penguins.csv")
    config = project_file(tmp_path / "dnnops.yaml", "penguins", source, "species")
    dnnops.Project(config).train()
    return source, config


def test_predict_writes_every_row_in_order_and_logs_them(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    _trained(tmp_path)
    rows = penguins_frame(rows=1000, seed=9).drop(columns=["species"])
    rows.loc[3, "island"] = "Mars"  # unseen: the unknown bucket, as the server does
    rows.insert(0, "order_id", [f"o-{i}" for i in range(1000)])  # not a feature: carried
    source = write_csv(rows, tmp_path / "new.csv")
    for out in (tmp_path / "out.parquet", tmp_path / "out.csv"):
        result = cli(
            "predict", str(source), "--model", "penguins@1", "--out", str(out),
            "--chunk-rows", "256", "--log", "--json", "--keep", "order_id,island",
        )  # fmt: skip
        assert result.code == 0, result.err
        summary = result.json()
        assert summary["rows"] == 1000 and summary["anomalies"]["island:unseen_category"] == 1
        written = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert len(written) == 1000 and written["prediction_id"].is_unique
        assert list(written.columns[:3]) == ["order_id", "island", "prediction_id"]
        assert list(written["order_id"]) == list(rows["order_id"])
        assert list(written["island"]) == list(rows["island"])
        expected = dnnops.load("penguins@1").predict(rows.drop(columns=["order_id"]))
        assert list(written["prediction"]) == list(expected)
        assert set(written["prediction"]) <= set(SPECIES)
        probabilities = written[[f"probability_{s}" for s in SPECIES]].to_numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    unknown = cli(
        "predict", str(source), "--model", "penguins@1", "--out", str(tmp_path / "x.csv"),
        "--keep", "order",
    )  # fmt: skip
    assert unknown.code == 2 and "--keep 'order': the file has no such column" in unknown.err
    assert not (tmp_path / "x.csv").exists()
    logged = cli("logs", "show", "--endpoint", "penguins", "--jsonl", "--limit", "5000")
    records = [json.loads(line) for line in logged.out.splitlines()]
    assert len(records) == 2000 and {r["protocol"] for r in records} == {"batch"}
    assert not list(tmp_path.glob("*.partial"))


def test_predict_refuses_what_the_server_would_refuse_and_leaves_no_output(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    _, config = _trained(tmp_path)
    strict = yaml.safe_load(config.read_text())
    strict["serve"] = {"unseen_category": "reject"}
    config.write_text(yaml.safe_dump(strict))
    rows = penguins_frame(rows=50, seed=2).drop(columns=["species"])
    rows.loc[40, "island"] = "Mars"
    source = write_csv(rows, tmp_path / "new.csv")
    out = tmp_path / "out.parquet"
    result = cli(
        "predict", str(source), "--model", "penguins@1", "--out", str(out), "-c", str(config),
    )  # fmt: skip
    assert result.code == 1
    assert "feature 'island'" in result.err and "serve.unseen_category: reject" in result.err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    rows.loc[40, "island"] = "Dream"
    rows = rows.astype({"body_mass_g": object})
    rows.loc[7, "body_mass_g"] = "n/a kg"  # text where a number belongs: refused, not imputed
    write_csv(rows, source)
    typo = cli("predict", str(source), "--model", "penguins@1", "--out", str(out))
    assert typo.code == 1 and "feature 'body_mass_g' must be a number" in typo.err


def test_a_numeric_target_is_named_as_regression_not_trained_as_classes(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    from tests.userdata import prices_frame

    source = write_csv(prices_frame(), tmp_path / "prices.csv")  # missing values in a feature
    config = project_file(tmp_path / "dnnops.yaml", "prices", source, "price")
    result = cli("train", "-c", str(config))
    assert result.code == 1, result.out
    assert "label column 'price' holds" in result.err and "regression" in result.err
    assert "Traceback" not in result.err


def test_rows_without_a_label_are_left_out_of_training(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = penguins_frame()
    frame.loc[[5, 17, 80], "species"] = None
    source = write_csv(frame, tmp_path / "penguins.csv")
    config = project_file(tmp_path / "dnnops.yaml", "penguins", source, "species")
    result = cli("train", "-c", str(config), "--json")
    assert result.code == 0, result.err
    assert result.json()["version"] == 1
