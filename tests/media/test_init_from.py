"""Starting from existing weights: a registered version (fine-tuning onto other
classes, with a frozen backbone), a torchvision-layout state dict file, and a warm-started
retraining; lineage says where every version's weights came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dnnops.errors import ConfigError, TrainingError
from dnnops.home import resolve_home
from dnnops.models.resnet import ResNet18
from dnnops.registry.open import open_registry
from dnnops.train.starting import StartingWeights, apply_starting_weights, weights_file
from tests.conftest import CliResult, write_project
from tests.userdata import image_folder

DATA = {"target": "shape", "image": {"size": [24, 24]}}
MODEL = {"arch": "resnet18", "params": {"width": 8, "small_input": True}}


def _started_from(home: Path, ref: str) -> dict[str, object] | None:
    registry = open_registry(resolve_home(home))
    name, _, version = ref.partition("@")
    return registry.manifest(registry.resolve(name, version)).started_from


def test_fine_tuning_a_registered_version_onto_other_classes(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image_folder(tmp_path / "three", per_class=12, size=24)
    write_project(
        tmp_path, name="shapes", data={"source": "three/", **DATA}, model=MODEL,
        train={"epochs": 3, "batch_size": 12, "seed": 1},
    )  # fmt: skip
    assert cli("train").code == 0
    image_folder(tmp_path / "two", per_class=12, size=24, seed=4)
    (tmp_path / "two" / "stripes").rename(tmp_path / "two-stripes")  # two classes now
    write_project(
        tmp_path,
        name="pair",
        data={"source": "two/", **DATA},
        model=MODEL,
        train={"epochs": 2, "batch_size": 12, "seed": 1, "init_from": "shapes@1",
               "freeze": "backbone"},
    )  # fmt: skip
    tuned = cli("train")
    assert tuned.code == 0, tuned.err
    assert "started from" in tuned.out and "shapes@1" in tuned.out
    start = _started_from(home, "pair@1")
    assert start is not None and start["origin"] == "shapes@1"
    assert start["fresh"] == ["fc.bias", "fc.weight"], "only the head starts fresh"
    assert int(str(start["frozen"])) > 0
    source = open_registry(resolve_home(home))
    before = source.file(
        source.resolve("shapes", "1"),
        source.manifest(source.resolve("shapes", "1")),
        "weights.safetensors",
    )
    after_record = source.resolve("pair", "1")
    after = source.file(after_record, source.manifest(after_record), "weights.safetensors")
    from safetensors.torch import load

    old, new = load(before), load(after)
    assert torch.equal(old["layer1.0.conv1.weight"], new["layer1.0.conv1.weight"]), "frozen"
    assert new["fc.weight"].shape == (2, 64)
    assert _started_from(home, "shapes@1") is None
    shown = cli("models", "show", "pair@1")
    assert "shapes@1 (sha256" in shown.out


def test_a_torchvision_layout_file_loads_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    full = ResNet18(1000)  # a torchvision resnet18's names and shapes
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}}, path)
    start = weights_file(str(path))
    mine = ResNet18(5)
    report = apply_starting_weights(mine, start, freeze=False)
    assert report.fresh == ["fc.bias", "fc.weight"] and report.loaded == 120
    assert torch.equal(mine.conv1.weight, full.conv1.weight)
    tensors = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, tensors)
    assert weights_file(str(tensors)).state.keys() == load_file(tensors).keys()
    foreign = StartingWeights({"encoder.weight": torch.zeros(3, 3)}, "other.pt", "0" * 64)
    with pytest.raises(TrainingError, match="fit this model"):
        apply_starting_weights(ResNet18(5), foreign, freeze=False)
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ConfigError, match="neither safetensors nor a torch state dict"):
        weights_file(str(tmp_path / "junk.pt"))
    with pytest.raises(ConfigError, match="cannot read"):
        weights_file(str(tmp_path / "missing.safetensors"))


def test_a_run_from_a_file_records_it(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image_folder(tmp_path / "photos", per_class=8, size=24)
    weights = tmp_path / "start.safetensors"
    save_file(ResNet18(3, width=8, small_input=True).state_dict(), weights)
    write_project(
        tmp_path, name="shapes", data={"source": "photos/", **DATA}, model=MODEL,
        train={"epochs": 1, "batch_size": 8, "seed": 1, "init_from": str(weights)},
    )  # fmt: skip
    result = cli("train")
    assert result.code == 0, result.err
    start = _started_from(home, "shapes@1")
    assert start is not None and start["origin"] == str(weights) and start["fresh"] == []
    [run] = list((home / "runs").iterdir())
    assert json.loads((run / "start.json").read_text())["loaded"] == start["loaded"]
    write_project(
        tmp_path, name="shapes", data={"source": "photos/", **DATA}, model=MODEL,
        train={"epochs": 1, "init_from": "nosuch@3"},
    )  # fmt: skip
    missing = cli("train")
    assert missing.code != 0 and "nosuch" in missing.err
