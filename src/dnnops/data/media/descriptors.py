"""What monitoring watches of an image or a text: a few numbers per input (descriptors),
computed by one function at training (the reference profile) and at serving (the log).

Images: ``brightness`` and ``contrast`` (mean and standard deviation of the model's
pixels in [0, 1]), ``sharpness`` (the variance of their Laplacian: blur lowers it),
``width``, ``height`` and ``aspect`` of the image as it came. Texts: ``length`` in
characters, ``tokens``, ``unknown_share`` (of tokens the vocabulary lacks) and
``non_ascii_share``. They are named ``COLUMN.DESCRIPTOR`` and drift is tested on them as
on numeric features.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image

from dnnops.data.media.encode import text_encoder
from dnnops.data.media.images import ImageError, read_image_bytes

IMAGE_DESCRIPTORS = ("brightness", "contrast", "sharpness", "width", "height", "aspect")
TEXT_DESCRIPTORS = ("length", "tokens", "unknown_share", "non_ascii_share")

Descriptors = dict[str, float]


def image_descriptors(
    column: str,
    cells: Sequence[object],
    x: np.ndarray,
    *,
    channels: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
) -> list[Descriptors]:
    """Per image: its pixel statistics as the model saw them (``x``, normalized) and its
    size as it came (read from the file's header, not decoded again)."""
    pixels = seen_pixels(x, channels=channels, size=size, mean=mean, std=std)
    grey = pixels.mean(axis=1)  # (N, H, W)
    laplacian = (
        -4 * grey[:, 1:-1, 1:-1]
        + grey[:, :-2, 1:-1]
        + grey[:, 2:, 1:-1]
        + grey[:, 1:-1, :-2]
        + grey[:, 1:-1, 2:]
    )
    out = []
    for i, cell in enumerate(cells):
        width, height = _size_of(cell)
        out.append(
            {
                f"{column}.brightness": float(pixels[i].mean()),
                f"{column}.contrast": float(pixels[i].std()),
                f"{column}.sharpness": float(laplacian[i].var()),
                f"{column}.width": float(width),
                f"{column}.height": float(height),
                f"{column}.aspect": float(width / height) if height else float("nan"),
            }
        )
    return out


def seen_pixels(
    x: np.ndarray,
    *,
    channels: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """(N, channels, height, width) in [0, 1]: the model's normalized input undone, what
    the model saw after the resize and crop (descriptors and previews both read it)."""
    pixels = x.reshape(len(x), channels, *size).astype(np.float64)
    result: np.ndarray = pixels * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None]
    return result


PREVIEW_SIDE = 64
"""A logged preview's longest side: enough to tell a cat from a receipt, ~2 kB a photo."""


def image_previews(
    x: np.ndarray,
    *,
    channels: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
) -> list[str]:
    """Per image, what the model saw (``x``, normalized) as a small JPEG data URI: the
    labelling queue and the dashboard show it where the log keeps no image bytes."""
    pixels = seen_pixels(x, channels=channels, size=size, mean=mean, std=std)
    as_bytes = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = []
    for image in as_bytes:
        picture = Image.fromarray(image[0] if channels == 1 else image.transpose(1, 2, 0))
        picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        encoded = io.BytesIO()
        picture.save(encoded, format="JPEG", quality=70)
        out.append("data:image/jpeg;base64," + base64.b64encode(encoded.getvalue()).decode())
    return out


def _size_of(cell: object) -> tuple[int, int]:
    try:
        data = read_image_bytes(cell)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except (OSError, ValueError, Image.DecompressionBombError, ImageError):
        return 0, 0


def text_descriptors(
    column: str, cells: Sequence[object], *, tokenizer: str, max_length: int
) -> list[Descriptors]:
    """Per text: its length, tokens, the share of them unknown, and of non-ASCII
    characters."""
    texts = ["" if c is None else str(c) for c in cells]
    tokens = text_encoder(tokenizer, max_length).encode(texts)
    out = []
    for i, text in enumerate(texts):
        count = int(tokens.lengths[i])
        out.append(
            {
                f"{column}.length": float(len(text)),
                f"{column}.tokens": float(count),
                f"{column}.unknown_share": float(tokens.unknown[i] / count) if count else 0.0,
                f"{column}.non_ascii_share": (
                    sum(1 for ch in text if ord(ch) >= 128) / len(text) if text else 0.0
                ),
            }
        )
    return out
