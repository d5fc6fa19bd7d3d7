from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from dnnops.errors import ConfigError, ModelError
from dnnops.models import ModelSpec, build_model


@pytest.mark.parametrize(
    ("arch", "shape", "params"),
    [
        ("mlp", (64,), {"hidden": [16, 8], "activation": "gelu"}),
        ("cnn", (1, 8, 8), {"channels": [4, 8]}),
        ("cnn", (3, 5, 7), {"channels": [4], "kernel_size": 5}),
        ("transformer", (13,), {"d_model": 16, "heads": 2, "layers": 1}),
    ],
)
def test_builtin_architectures_map_instances_to_class_logits(
    arch: str, shape: tuple[int, ...], params: dict[str, object]
) -> None:
    model = build_model(ModelSpec(arch, shape, 7, params))
    logits = model(torch.randn(5, *shape))
    assert logits.shape == (5, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_spec_round_trips_through_a_dict() -> None:
    spec = ModelSpec("cnn", (1, 8, 8), 10, {"channels": [4]})
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_cnn_on_flat_rows_says_how_to_fix() -> None:
    with pytest.raises(ModelError, match=r"model\.input_shape"):
        build_model(ModelSpec("cnn", (64,), 10))


def test_bad_builtin_params_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"model\.params\.widths"):
        build_model(ModelSpec("mlp", (4,), 2, {"widths": [3]}))


def test_user_module_gets_shape_and_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mynets.py").write_text(
        "import math, torch\n"
        "class Tiny(torch.nn.Module):\n"
        "    def __init__(self, input_shape, num_classes, width=4):\n"
        "        super().__init__()\n"
        "        self.net = torch.nn.Sequential(torch.nn.Flatten(),\n"
        "            torch.nn.Linear(math.prod(input_shape), width),\n"
        "            torch.nn.Linear(width, num_classes))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_model(ModelSpec("python:mynets:Tiny", (2, 3), 4, {"width": 5}))
    assert model(torch.zeros(2, 2, 3)).shape == (2, 4)
    with pytest.raises(ModelError, match="do not fit"):
        build_model(ModelSpec("python:mynets:Tiny", (2, 3), 4, {"depth": 5}))
    with pytest.raises(ModelError, match="PYTHONPATH"):
        build_model(ModelSpec("python:nosuchmodule:Net", (2,), 2))
    sys.modules.pop("mynets", None)


def test_an_mlp_embeds_each_wide_category_block_and_passes_the_rest_through() -> None:
    # inputs: 2 numbers, a 300-value category at 2..301, a 3-value category at 302..304
    spec = ModelSpec(
        "mlp", (305,), 2, {"hidden": [16], "embedding_dim": 4}, category_blocks=((2, 300), (302, 3))
    )
    model = build_model(spec)
    first = model.net[1]  # type: ignore[index]
    assert first.in_features == 2 + 3 + 4  # kept inputs, then one 4-wide embedding
    assert [tuple(e.weight.shape) for e in model.embeddings] == [(4, 300)]  # type: ignore[union-attr]
    x = torch.zeros(3, 305)
    x[0, 2 + 7] = x[1, 2 + 7] = 1.0  # the same zip code in rows 0 and 1
    x[2, 2 + 9] = 1.0
    out = model.eval()(x)
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    plain = build_model(ModelSpec("mlp", (305,), 2, {"hidden": [16]}, category_blocks=((2, 300),)))
    assert plain.net[1].in_features == 305  # type: ignore[index]  # embedding_dim 0: as is
