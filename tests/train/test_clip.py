"""The loop's gradient clipping is clip_grad_norm_'s rule, faster: the same gradients."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dnnops.train.loop import clip_gradients


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 100.0), st.floats(0.1, 1000.0))
def test_clipping_matches_clip_grad_norm(seed: int, max_norm: float, scale: float) -> None:
    torch.manual_seed(seed)
    ours, theirs = (nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 3)) for _ in range(2))
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(32, 7) * scale
    for model in (ours, theirs):
        model(x).pow(2).mean().backward()
    clip_gradients(list(ours.parameters()), max_norm)
    nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert mine.grad is not None and reference.grad is not None
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-5, atol=1e-7)
