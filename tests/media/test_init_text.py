"""``dnnops init --data`` on a file with a text column: a text project, said so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dnnops.data.leaks import identifier_columns
from dnnops.data.media.detect import text_reason
from tests.conftest import CliResult
from tests.userdata import tickets_frame, write_csv


def test_init_finds_the_text_column_and_the_project_trains(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = tickets_frame(400, seed=3)
    frame["channel"] = np.where(np.arange(len(frame)) % 3 == 0, "email", "chat")
    source = write_csv(frame, tmp_path / "support.csv")
    result = cli("init", "--data", str(source), "--target", "topic")
    assert result.code == 0, result.err
    assert "text column 'ticket' (free text: a median of" in result.out
    assert "dropped 'channel': a text model reads its text column alone" in result.out
    project = yaml.safe_load((tmp_path / "dnnops.yaml").read_text())
    assert project["data"]["text"]["column"] == "ticket"
    assert set(project["data"]["schema"]["drop"]) == {"row", "channel"}
    assert project["model"]["arch"] == "text_transformer"
    assert 16 <= project["data"]["text"]["max_length"] <= 64
    gate = project["evaluate"]["gates"][0]
    assert gate["metric"] == "accuracy" and 0.34 < gate["min"] < 1.0  # from a bag of words
    trained = cli("train", "-c", "dnnops.yaml", "--json")
    assert trained.code == 0, trained.err
    assert trained.json()["gates_passed"] is True


@pytest.mark.parametrize(
    ("values", "text"),
    [
        (tickets_frame(60)["ticket"], True),
        (pd.Series(["Dream", "Biscoe", "Torgersen"] * 20), False),  # categories repeat
        (pd.Series([f"order {i}" for i in range(60)]), False),  # short: an id with a word
        (pd.Series(["the parcel is late"] * 60), False),  # one sentence, not free text
        (pd.Series(np.arange(60)), False),
    ],
)
def test_free_text_is_told_from_categories_and_identifiers(values: pd.Series, text: bool) -> None:
    assert (text_reason(values) is not None) is text


def test_distinct_sentences_are_not_dropped_as_identifiers() -> None:
    frame = tickets_frame(60).drop(columns=["topic"])
    dropped = {f.column for f in identifier_columns(frame)}
    assert dropped == {"row"}
