"""The learning-rate schedule as a pure function of the optimizer step (as in nanoGPT)."""

from __future__ import annotations

import math
from typing import Literal


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    *,
    schedule: Literal["cosine", "constant"] = "cosine",
    min_ratio: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warmup to 1, then
    constant or a cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
