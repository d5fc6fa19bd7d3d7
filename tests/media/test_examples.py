"""``dnnops init --example images|text``: a project file and the data it reads, made here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dnnops.config import load_config
from dnnops.data.sources import load_source
from tests.conftest import CliResult


def test_the_images_example_writes_a_photo_folder_its_project_reads(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    project = home.parent / "photos" / "dnnops.yaml"
    project.parent.mkdir()
    result = cli("init", "--example", "images", "--path", str(project))
    assert result.code == 0, result.err
    assert "1797 photos in 10 class folders" in result.out
    config = load_config(project)
    assert config.data.image is not None and config.model.arch == "resnet18"
    folder = project.parent / config.data.source
    assert sorted(p.name for p in folder.iterdir()) == [str(d) for d in range(10)]
    dataset = load_source(str(folder), config.data.target, require_target=True)
    assert len(dataset) == 1797 and dataset.target is not None
    assert sorted(dataset.target.astype(str).unique()) == [str(d) for d in range(10)]
    again = cli("init", "--example", "images", "--path", str(project), "--force")
    assert again.code == 2 and "not empty" in again.err  # never writes over a user's folder


def test_the_text_example_writes_tickets_with_a_rare_topic(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    project = home.parent / "tickets" / "dnnops.yaml"
    project.parent.mkdir()
    assert cli("init", "--example", "text", "--path", str(project)).code == 0
    config = load_config(project)
    assert config.data.text is not None and config.model.arch == "text_transformer"
    frame = pd.read_csv(project.parent / config.data.source)
    assert list(frame.columns) == ["ticket_id", "ticket", "topic"] and len(frame) == 2000
    shares = frame["topic"].value_counts(normalize=True)
    assert len(shares) == 5 and 0.03 < shares.min() < 0.08
    assert frame["ticket"].str.split().str.len().median() >= 5
    assert not (project.parent / "digit-photos").exists()
