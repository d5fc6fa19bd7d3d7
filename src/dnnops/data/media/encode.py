"""Image and text cells to the model's numbers: the media half of ``apply_preprocessing``.

A bad cell raises an ``ImageError`` or ``TextError`` carrying its row, so the server
answers 4xx naming the instance and training names the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from dnnops.data.media.images import (
    ImageError,
    decode_image,
    is_location,
    read_image_bytes,
    to_pixels,
)
from dnnops.data.media.text import TextEncoder, TextError
from dnnops.errors import DataError


class CellError(DataError):
    """A bad image or text at ``row`` (the instance's index in its batch), with the rule
    it broke (``not_an_image``, ``too_many_pixels``, ``truncated``, ``empty``, ...): the
    request's fault, so a server answers 422 and goes on serving."""

    http_status = 422

    def __init__(self, row: int, cause: ImageError | TextError) -> None:
        super().__init__(f"instance {row}: {cause.rule}: {cause}")
        self.row = row
        self.rule: str = cause.rule


def encode_images(
    values: Sequence[object],
    *,
    size: tuple[int, int],
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    max_pixels: int,
) -> np.ndarray:
    """(N, channels * height * width) float32: each image decoded, scaled, cut, and
    normalized per channel as ``(pixel / 255 - mean) / std``."""
    height, width = size
    out = np.empty((len(values), channels, height, width), dtype=np.float32)
    for row, value in enumerate(values):
        try:
            image = decode_image(read_image_bytes(value), max_pixels=max_pixels)
            out[row] = to_pixels(image, size=size, channels=channels)
        except ImageError as exc:
            if is_location(value):  # a training file: named by where it lies
                raise ImageError(exc.rule, f"{value}: {exc}") from None
            raise CellError(row, exc) from None
    scale = np.float32(1 / 255)
    shift = np.asarray(mean, dtype=np.float32)[:, None, None]
    spread = np.asarray(std, dtype=np.float32)[:, None, None]
    out *= scale
    out -= shift
    out /= spread
    return out.reshape(len(values), -1)


@lru_cache(maxsize=8)
def text_encoder(document: str, max_length: int) -> TextEncoder:
    """The stored tokenizer, parsed once per process."""
    return TextEncoder(document, max_length)


def text_cell_error(value: object) -> TextError | None:
    """What is wrong with one text cell before tokenizing: not a string, or empty (a
    missing cell is an empty text); None for a text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return TextError("empty", "the text is empty (data.text.empty)")
    if not isinstance(value, str):
        return TextError("not_text", f"text must be a string, got {value!r}")
    return None


def encode_texts(
    values: Sequence[object],
    *,
    tokenizer: str,
    max_length: int,
    too_long: str,
    empty: str,
) -> np.ndarray:
    """(N, max_length) float32 token ids (exact: ids stay far below 2**24), under the
    text policy: an empty text or an over-long one refused when the policy says so."""
    texts: list[str] = []
    for row, value in enumerate(values):
        broken = text_cell_error(value)
        if broken is not None and (broken.rule == "not_text" or empty == "reject"):
            raise CellError(row, broken)
        texts.append(value if isinstance(value, str) else "")
    tokens = text_encoder(tokenizer, max_length).encode(texts)
    if too_long == "reject":
        over = np.flatnonzero(tokens.lengths > max_length - 1)
        if len(over):
            row = int(over[0])
            message = (
                f"the text has {int(tokens.lengths[row])} tokens, over the "
                f"{max_length - 1} the model reads (data.text.too_long: reject)"
            )
            raise CellError(row, TextError("too_long", message))
    return tokens.ids.astype(np.float32)
