"""What a column of images or texts was like in training (stored in the schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ImageSpec(BaseModel):
    """What the training images were: monitoring and ``data validate`` compare with it."""

    model_config = ConfigDict(frozen=True)
    formats: list[str]
    """The formats seen (JPEG, PNG, WEBP)."""
    modes: list[str]
    """Pillow's modes seen (RGB, L, RGBA, P, ...)."""
    min_width: int
    max_width: int
    min_height: int
    max_height: int


class TextSpec(BaseModel):
    """What the training texts were: lengths in characters and the share of ASCII."""

    model_config = ConfigDict(frozen=True)
    min_length: int
    median_length: float
    p99_length: float
    max_length: int
    ascii_share: float
    """The share of characters that are ASCII, over all training texts."""
