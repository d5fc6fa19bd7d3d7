"""train.preset and model.ensemble: several networks trained side by side, served as one;
with numbers binned (``data.preprocessing.numeric_bins``), as init writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import dnnops
from dnnops.config import apply_preset, parse_config
from dnnops.models import ModelSpec, build_model
from dnnops.models.ensemble import Ensemble
from dnnops.train.objective import Objective
from tests.conftest import CliResult
from tests.userdata import penguins_frame, prices_frame, project_file, write_csv


def _config(**sections: Any) -> dict[str, Any]:
    return {"name": "p", "data": {"source": "x.csv", "target": "y"}, **sections}


def test_fast_caps_epochs_and_best_averages_four_networks_with_early_stopping() -> None:
    fast = parse_config(_config(train={"preset": "fast", "epochs": 60}, model={"ensemble": 3}))
    assert (fast.train.epochs, fast.model.ensemble) == (10, 1)
    best = parse_config(_config(train={"preset": "best", "epochs": 60}))
    assert (best.train.epochs, best.model.ensemble) == (60, 4)
    assert best.train.early_stopping is not None and best.train.early_stopping.restore_best
    assert apply_preset(best) == best  # a run's saved config resumes to the same run
    chosen = parse_config(
        _config(train={"preset": "best", "early_stopping": {"patience": 2}}, model={"ensemble": 2})
    )
    assert chosen.model.ensemble == 2 and chosen.train.early_stopping.patience == 2  # type: ignore[union-attr]
    assert parse_config(_config()).model.ensemble == 1  # auto: the file as written


def test_each_member_learns_on_its_own_loss_and_the_answer_is_their_mean() -> None:
    torch.manual_seed(0)
    ensemble = build_model(ModelSpec("mlp", (6,), 3, {"hidden": [8]}, ensemble=3))
    assert isinstance(ensemble, Ensemble)
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    ensemble.train()
    per_member = ensemble(x)
    assert per_member.shape == (10, 3, 3)
    losses = [torch.nn.functional.cross_entropy(per_member[:, k], y) for k in range(3)]
    assert torch.allclose(Objective()(per_member, y), torch.stack(losses).mean())
    assert not torch.equal(per_member[:, 0], per_member[:, 1])  # different initial weights
    ensemble.eval()
    probabilities = torch.stack([m(x).softmax(-1) for m in ensemble.members], 1).mean(1)
    assert torch.allclose(ensemble(x).softmax(-1), probabilities, atol=1e-6)

    regressor = build_model(ModelSpec("mlp", (6,), 1, {}, (100.0, 5.0), ensemble=2))
    regressor.eval()
    members = regressor.net.members  # type: ignore[union-attr]
    expected = torch.stack([m(x) for m in members], 1).mean(1) * 5.0 + 100.0
    assert torch.allclose(regressor(x), expected)
    assert ModelSpec.from_dict(ModelSpec("mlp", (6,), 1, ensemble=2).to_dict()).ensemble == 2


@pytest.mark.parametrize(
    ("frame", "target", "task"),
    [
        (penguins_frame(300), "species", "classification"),
        (prices_frame(300), "price", "regression"),
    ],
)
def test_best_preset_trains_registers_and_serves_one_averaged_graph(
    home: Path,
    cli: Callable[..., CliResult],
    frame: Any,
    target: str,
    task: str,
) -> None:
    source = write_csv(frame, home.parent / "data.csv")
    data = {"source": str(source), "target": target, "preprocessing": {"numeric_bins": 8}}
    config = project_file(
        home.parent / "dnnops.yaml",
        "table",
        source,
        target,
        task=task,
        data=data,
        model={"arch": "mlp", "params": {"hidden": [32], "embedding_dim": 2}},
        train={"epochs": 6, "batch_size": 32, "lr": 0.01, "seed": 1, "preset": "best"},
        evaluate={"baseline": "trivial"},
    )
    trained = cli("train", "-c", str(config), "--json")
    assert trained.code == 0, trained.err
    shown = cli("models", "show", "table@1", "--json").json()
    spec = shown["manifest"]["spec"]
    assert spec["ensemble"] == 4
    widths = [width for _, width in spec["category_blocks"]]
    assert 3 in widths  # island or district: wider than embedding_dim 2, so embedded
    model = dnnops.load("table@1")
    rows = frame.drop(columns=[target]).head(20)
    answers = model.predict(rows)  # the ONNX graph (parity with torch checked at register)
    assert len(answers) == 20
    if task == "regression":
        assert np.corrcoef(answers.astype(float), frame[target].head(20))[0, 1] > 0.5
    else:
        assert set(answers) <= set(frame[target])
        assert np.allclose(model.predict_proba(rows).sum(axis=1), 1.0, atol=1e-5)
