"""``dnnops init --data photos/`` on a folder of photos: an image project sized from the
photos, said so, that trains as written (a broken file left out by name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import CliResult
from tests.userdata import image_folder


def test_init_on_a_photo_folder_writes_an_image_project_that_trains(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    photos = image_folder(tmp_path / "photos", per_class=16, size=40)
    (photos / "square" / "saved-error-page.jpg").write_bytes(b"<html>404</html>")
    result = cli("init", "--data", str(photos), "--target", "shape")
    assert result.code == 0, result.err
    assert "a photo folder, 49 images in 3 classes" in result.out
    assert "seen at 32x32 with 3 channel(s)" in result.out  # 32..48 pixels: the 32 square
    project = yaml.safe_load((tmp_path / "dnnops.yaml").read_text())
    assert project["data"]["target"] == "shape" and project["data"]["image"]["size"] == [32, 32]
    assert project["model"]["arch"] == "resnet18" and project["train"]["batch_size"] == 16
    project["train"]["epochs"] = 3  # as written but shorter: a test, not a model
    (tmp_path / "dnnops.yaml").write_text(yaml.safe_dump(project))
    trained = cli("train", "-c", "dnnops.yaml", "--json")
    assert trained.code == 0, trained.err
    assert "1 of 49 images cannot be used" in trained.err and "saved-error-page.jpg" in trained.err
    assert trained.json()["metrics"]["test_accuracy"] >= 0.8  # small batches: it learns


def test_init_on_a_photo_folder_refuses_a_regression(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    photos = image_folder(tmp_path / "photos", per_class=2, size=40)
    result = cli("init", "--data", str(photos), "--task", "regression")
    assert result.code != 0 and "trains a classifier (its subfolders)" in result.err
    assert not (tmp_path / "dnnops.yaml").exists()
