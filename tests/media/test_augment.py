"""Augmentation changes training batches only, reproducibly: the same (seed, epoch,
batch) draws the same changes, so a run interrupted mid-epoch resumes bit-exact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from dnnops.config import AugmentConfig, TrainConfig
from dnnops.data.prepare import Arrays
from dnnops.errors import ConfigError, TrainingInterrupted
from dnnops.models.cnn import CNN
from dnnops.train.augment import Augmenter, ImageStats
from dnnops.train.checkpoint import load_latest
from dnnops.train.loop import LoopContext, Trainer
from dnnops.train.signals import StopFlag
from tests.conftest import CliResult, write_project
from tests.userdata import image_folder, tickets_frame

STATS = ImageStats([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
ALL = AugmentConfig(crop=2, flip=True, colour=0.3)


def _images(count: int = 48, seed: int = 0) -> Arrays:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (count, 3, 12, 12)).astype(np.float32)
    return Arrays(x, (np.arange(count) % 3).astype(np.int64))


def test_the_same_batch_draws_the_same_changes_and_pixels_stay_in_range() -> None:
    x = torch.from_numpy(_images().x[:8])
    first = Augmenter(ALL, seed=5, image=STATS)(x, epoch=1, batch=2)
    again = Augmenter(ALL, seed=5, image=STATS)(x, epoch=1, batch=2)
    assert torch.equal(first, again)
    assert not torch.equal(first, Augmenter(ALL, seed=5, image=STATS)(x, epoch=1, batch=3))
    assert not torch.equal(first, x) and first.shape == x.shape
    pixels = first * 0.25 + 0.5
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0 + 1e-6
    flipped = Augmenter(AugmentConfig(flip=True), seed=0, image=STATS)(x, epoch=0, batch=0)
    mirrored = [bool(torch.equal(f, o.flip(-1))) for f, o in zip(flipped, x, strict=True)]
    kept = [bool(torch.equal(f, o)) for f, o in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored)


def test_token_dropout_leaves_cls_and_padding() -> None:
    ids = torch.tensor([[2, 10, 11, 12, 13, 0, 0]] * 50, dtype=torch.float32)
    dropped = Augmenter(AugmentConfig(token_dropout=0.5), seed=1, text=True)(ids, epoch=0, batch=0)
    assert torch.all(dropped[:, 0] == 2) and torch.all(dropped[:, 5:] == 0)
    share = float((dropped[:, 1:5] == 1).float().mean())
    assert 0.35 < share < 0.65


def test_an_augmentation_the_input_cannot_take_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an image"):
        Augmenter(AugmentConfig(flip=True), seed=0, text=True)
    with pytest.raises(ConfigError, match="not text"):
        Augmenter(AugmentConfig(token_dropout=0.1), seed=0, image=STATS)


class _StopAfter:
    """A progress sink that asks the loop to stop after ``batches`` batches (a SIGTERM)."""

    def __init__(self, flag: StopFlag, batches: int) -> None:
        self.flag, self.left = flag, batches

    def start_epoch(self, epoch: int, epochs: int, batches: int, *, done: int) -> None:
        return None

    def advance(self, batches: int) -> None:
        self.left -= batches
        if self.left <= 0:
            self.flag.signum = 15

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        return None


def _trainer(folder: Path, ctx_stop: StopFlag | None = None, stop_after: int = 0) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(epochs=3, batch_size=8, lr=0.01, seed=4, augment=ALL)
    flag = ctx_stop or StopFlag()
    progress = _StopAfter(flag, stop_after) if stop_after else None
    ctx = LoopContext("run", folder, stop=flag, **({"progress": progress} if progress else {}))
    augment = Augmenter(ALL, seed=4, image=STATS)
    model = CNN((3, 12, 12), 3, (4,), hidden=8, dropout=0.0)
    return Trainer(model, config, _images(), valid=_images(12, 1), ctx=ctx, augment=augment)


def test_a_run_stopped_mid_epoch_resumes_to_the_same_weights(tmp_path: Path) -> None:
    straight = _trainer(tmp_path / "straight")
    straight.fit()
    interrupted = _trainer(tmp_path / "resumed", stop_after=9)  # epoch 1, batch 3 of 6
    with pytest.raises(TrainingInterrupted):
        interrupted.fit()
    resumed = _trainer(tmp_path / "resumed")
    resumed.restore(load_latest(tmp_path / "resumed"))
    assert resumed.state.epoch == 1 and resumed.state.batch_in_epoch == 3
    resumed.fit()
    for name, weights in straight.model.state_dict().items():
        assert torch.equal(weights, resumed.model.state_dict()[name]), name
    plain = _trainer(tmp_path / "plain")
    plain.augment = None
    plain.fit()
    assert not torch.equal(
        plain.model.state_dict()["head.1.weight"], straight.model.state_dict()["head.1.weight"]
    )


def test_the_cli_trains_with_augmentation_and_refuses_a_mismatch(
    home: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image_folder(tmp_path / "photos", per_class=10, size=24)
    data = {"source": "photos/", "target": "shape", "image": {"size": [24, 24]}}
    model = {"arch": "cnn", "params": {"channels": [4]}}
    train = {"epochs": 2, "batch_size": 8, "seed": 1, "augment": {"crop": 2, "flip": True}}
    write_project(tmp_path, name="shapes", data=data, model=model, train=train)
    assert cli("train").code == 0
    tickets_frame(60).to_csv(tmp_path / "t.csv", index=False)
    text = {"source": "t.csv", "target": "topic", "text": {"column": "ticket", "vocab_size": 50}}
    write_project(
        tmp_path,
        name="tickets",
        data=text,
        model={"arch": "embedding_bag"},
        train={"epochs": 1, "augment": {"flip": True}},
    )
    refused = cli("train")
    assert refused.code == 2 and "crop, flip and colour change images" in refused.err
