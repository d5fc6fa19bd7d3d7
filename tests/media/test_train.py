"""A photo folder and a text column trained, evaluated and registered through the CLI,
as a user runs it; the image architecture keeps torchvision's parameter layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from dnnops.models.mobilenet import MobileNetV2
from dnnops.models.resnet import ResNet18
from tests.conftest import CliResult, write_project
from tests.userdata import image_folder, tickets_frame


def _test_accuracy(home: Path) -> float:
    [run] = list((home / "runs").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    return float(metrics["test_accuracy"])


def test_a_photo_folder_trains_a_resnet_and_is_registered(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image_folder(tmp_path / "photos", per_class=30, size=32)
    write_project(
        tmp_path,
        name="shapes",
        data={"source": "photos/", "target": "shape", "image": {"size": [32, 32]}},
        model={"arch": "resnet18", "params": {"width": 8, "small_input": True}},
        train={"epochs": 6, "batch_size": 16, "lr": 0.003, "seed": 3},
    )
    result = cli("train")
    assert result.code == 0, result.err
    assert "skipped 1 file(s)" in result.err
    assert "registered shapes@1" in result.out
    assert "resnet18 [3, 32, 32] -> 3 classes" in result.out
    assert _test_accuracy(home) >= 0.8


def test_a_photo_folder_trains_a_mobilenet(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image_folder(tmp_path / "photos", per_class=30, size=32)
    write_project(
        tmp_path,
        name="shapes",
        data={"source": "photos/", "target": "shape", "image": {"size": [32, 32]}},
        model={
            "arch": "mobilenet_v2",
            "params": {"width": 0.25, "small_input": True, "dropout": 0.0},
        },  # from scratch on 60 photos it needs ~12 epochs before it beats chance
        train={"epochs": 15, "batch_size": 16, "lr": 0.01, "seed": 3},
    )
    result = cli("train")
    assert result.code == 0, result.err
    assert "mobilenet_v2 [3, 32, 32] -> 3 classes" in result.out
    assert _test_accuracy(home) >= 0.8


def test_unreadable_photos_are_left_out_by_name_or_stop_training_by_policy(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    photos = image_folder(tmp_path / "photos", per_class=12, size=32)
    (photos / "circle" / "broken.jpg").write_bytes(b"an html error page, saved as .jpg")
    whole = (photos / "square" / "square-000.png").read_bytes()
    (photos / "square" / "cut.png").write_bytes(whole[: len(whole) // 2])
    data = {"source": "photos/", "target": "shape", "image": {"size": [32, 32]}}
    model = {"arch": "cnn", "params": {"channels": [4]}}
    write_project(tmp_path, name="shapes", data=data, model=model, train={"epochs": 1})
    result = cli("train")
    assert result.code == 0, result.err
    assert "2 of 38 images cannot be used and are left out of training" in result.err
    assert "broken.jpg" in result.err and "cut.png" in result.err
    refusing = {**data, "image": {**data["image"], "unreadable": "fail"}}
    write_project(tmp_path, name="shapes", data=refusing, model=model, train={"epochs": 1})
    result = cli("train")
    assert result.code != 0
    assert "2 of 38 images cannot be used" in result.err and "unreadable: skip" in result.err
    assert "Traceback" not in result.err


def test_an_image_column_of_urls_or_of_bytes_trains(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    photos = image_folder(tmp_path / "photos", per_class=12, size=32)
    files = sorted(p for p in photos.rglob("*") if p.suffix in {".png", ".jpg"})
    shapes = [p.parent.name for p in files]
    urls = [p.as_uri() for p in files]  # file:///...: any fsspec URL is read alike
    urls[0] = (photos / "gone.png").as_uri()  # a URL that names nothing
    pd.DataFrame({"photo": urls, "shape": shapes}).to_csv(tmp_path / "urls.csv", index=False)
    blobs = pd.DataFrame({"photo": [p.read_bytes() for p in files], "shape": shapes})
    blobs.to_parquet(tmp_path / "blobs.parquet")  # a binary column: the images themselves
    for source in ("urls.csv", "blobs.parquet"):
        write_project(
            tmp_path,
            name="shapes",
            data={"source": source, "target": "shape",
                  "image": {"column": "photo", "size": [32, 32]}},
            model={"arch": "cnn", "params": {"channels": [4]}},
            train={"epochs": 1},
        )  # fmt: skip
        result = cli("train")
        assert result.code == 0, result.err
        assert "registered shapes@" in result.out
        if source == "urls.csv":
            assert "1 of 36 images cannot be used" in result.err and "gone.png" in result.err
        else:
            assert "cannot be used" not in result.err


def test_a_text_column_trains_a_tokenizer_and_a_transformer(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    tickets_frame(300).to_csv(tmp_path / "tickets.csv", index=False)
    write_project(
        tmp_path,
        name="tickets",
        data={
            "source": "tickets.csv",
            "target": "topic",
            "text": {"column": "ticket", "vocab_size": 200, "max_length": 24},
        },
        model={"arch": "text_transformer", "params": {"d_model": 32, "heads": 2, "layers": 1}},
        train={"epochs": 12, "batch_size": 32, "lr": 0.003, "seed": 1},
    )
    result = cli("train")
    assert result.code == 0, result.err
    assert "column 'row' is not a feature" in result.err
    assert "registered tickets@1" in result.out
    assert _test_accuracy(home) >= 0.8
    [run] = list((home / "runs").iterdir())
    stored = json.loads((run / "data" / "preprocessing.json").read_text())
    [column] = stored["columns"]
    assert column["type"] == "text" and '"[CLS]"' in column["text"]["tokenizer"]


def _torchvision_resnet18_layout() -> dict[str, tuple[int, ...]]:
    """torchvision's ``resnet18()`` state dict, names and shapes, written from its
    definition (torchvision itself does not import beside a CPU torch here)."""
    out: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix: str, width: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{name}"] = (width,)
        out[f"{prefix}.num_batches_tracked"] = ()

    bn("bn1", 64)
    inplanes = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for block in (0, 1):
            prefix = f"layer{stage}.{block}"
            first_in = inplanes if block == 0 else planes
            out[f"{prefix}.conv1.weight"] = (planes, first_in, 3, 3)
            bn(f"{prefix}.bn1", planes)
            out[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn2", planes)
            if block == 0 and stage > 1:
                out[f"{prefix}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                bn(f"{prefix}.downsample.1", planes)
        inplanes = planes
    out["fc.weight"], out["fc.bias"] = (1000, 512), (1000,)
    return out


def test_resnet18_has_torchvision_parameter_names_and_shapes() -> None:
    model = ResNet18(1000)
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert ours == _torchvision_resnet18_layout()
    assert len(ours) == 122
    logits = model.eval()(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, 1000)


def test_mobilenet_v2_has_torchvision_parameter_names_and_shapes() -> None:
    model = MobileNetV2(1000)
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert len(ours) == 314  # torchvision's mobilenet_v2(): 314 entries, 3,504,872 parameters
    assert sum(p.numel() for p in model.parameters()) == 3_504_872
    assert ours["features.0.0.weight"] == (32, 3, 3, 3)  # the stem
    assert ours["features.1.conv.0.0.weight"] == (32, 1, 3, 3)  # depthwise, no expansion
    assert ours["features.2.conv.0.0.weight"] == (96, 16, 1, 1)  # expansion x6
    assert ours["features.17.conv.2.weight"] == (320, 960, 1, 1)  # the last projection
    assert ours["features.18.0.weight"] == (1280, 320, 1, 1)
    assert ours["classifier.1.weight"] == (1000, 1280)
    small = MobileNetV2(1000, small_input=True)  # other strides, the same weights
    assert {n: tuple(t.shape) for n, t in small.state_dict().items()} == ours
    assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 1000)


def test_an_architecture_without_its_input_is_refused_when_the_file_is_read() -> None:
    import pytest

    from dnnops.config import parse_config
    from dnnops.errors import ConfigError

    table = {"source": "rows.csv", "target": "y"}
    with pytest.raises(ConfigError, match="resnet18 reads images"):
        parse_config({"name": "m", "data": table, "model": {"arch": "resnet18"}})
    with pytest.raises(ConfigError, match="mobilenet_v2 reads images"):
        parse_config({"name": "m", "data": table, "model": {"arch": "mobilenet_v2"}})
    with pytest.raises(ConfigError, match="text_transformer reads text"):
        parse_config({"name": "m", "data": table, "model": {"arch": "text_transformer"}})
    with pytest.raises(ConfigError, match="images or text"):
        parse_config({"name": "m", "data": {**table, "image": {}, "text": {"column": "t"}}})
    folder = parse_config({"name": "m", "data": {"source": "photos/"}})
    assert folder.data.image is not None and folder.data.image.column == "image"
