"""Decode an image safely and make it the model's tensor.

Every image dnnops reads (a training file, a request's bytes) goes through
``decode_image``: the format is checked against the allowed ones, the pixel count
against a budget *before* the pixels are decoded (a 50 kB PNG can claim 100k x 100k
pixels: a decompression bomb), and a truncated file is an error, never a half-grey
picture. Each failure is an ``ImageError`` naming its rule.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from dnnops.errors import DataError

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
"""What a folder or a request may hold (the formats Pillow decodes without plugins)."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DEFAULT_MAX_PIXELS = 40_000_000
"""An image with more pixels than this is refused before it is decoded (40 MP: a large
phone photo passes, a decompression bomb does not)."""

ImageRule = Literal["not_an_image", "unsupported_format", "too_many_pixels", "truncated"]


class ImageError(DataError):
    """An image that cannot be used, with the rule it broke."""

    def __init__(self, rule: ImageRule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class ImageFacts:
    """What an image is before it is resized: for the schema and monitoring."""

    width: int
    height: int
    mode: str
    format: str


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, formats: tuple[str, ...] = IMAGE_FORMATS
) -> Image.Image:
    """The decoded image behind ``data``, or an ``ImageError`` naming what is wrong."""
    try:
        with warnings.catch_warnings():  # the budget below decides, not Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageError(
            "not_an_image", f"not an image ({len(data)} bytes, starting {data[:8]!r})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageError(
            "too_many_pixels", f"over Pillow's pixel limit ({len(data)} bytes)"
        ) from None
    if image.format not in formats:
        raise ImageError(
            "unsupported_format", f"{image.format} image; allowed: {', '.join(formats)}"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{width}x{height} is {width * height:,} pixels, over the budget of {max_pixels:,}",
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError):
        raise ImageError("truncated", f"the {image.format} data is truncated or damaged") from None
    return image


def facts_of(image: Image.Image) -> ImageFacts:
    width, height = image.size
    return ImageFacts(width, height, image.mode, image.format or "")


class ImageUrl(str):
    """An image a data file names by URL (``s3://...``, ``gs://...``, ``file://...``),
    read through fsspec as the artifact store is. Only a table's loader makes one: a
    request's text is never taken for a location."""

    __slots__ = ()


def is_location(value: object) -> bool:
    """Whether an image cell names where the image lies (a path or a URL), not its bytes."""
    return isinstance(value, Path | ImageUrl)


def read_image_bytes(value: object) -> bytes:
    """The bytes of an image cell: ``bytes`` as they are, a ``Path`` read from disk or an
    ``ImageUrl`` through fsspec (a training file). Text is never taken for a path: a
    request cannot name a file on the server's disk."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Path):
        try:
            return value.read_bytes()
        except OSError as exc:
            raise ImageError("not_an_image", f"cannot read {value}: {exc.strerror}") from None
    if isinstance(value, ImageUrl):
        return _read_url(value)
    raise ImageError(
        "not_an_image", f"an image must be bytes (base64 in JSON), got {type(value).__name__}"
    )


def to_pixels(image: Image.Image, *, size: tuple[int, int], channels: int) -> np.ndarray:
    """(channels, height, width) uint8: the image scaled so its shorter side fits, then
    cut to ``size`` (height, width) from its centre, as torchvision's Resize + CenterCrop."""
    height, width = size
    if image.format == "JPEG":  # decode at a fraction of the size when that is enough
        image.draft("RGB" if channels == 3 else "L", (width, height))
    converted = image.convert("RGB" if channels == 3 else "L")
    scale = max(width / converted.width, height / converted.height)
    resized = converted.resize(
        (max(width, round(converted.width * scale)), max(height, round(converted.height * scale))),
        Image.Resampling.BILINEAR,
        reducing_gap=3.0,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    cropped = resized.crop((left, top, left + width, top + height))
    pixels = np.asarray(cropped, dtype=np.uint8)
    return pixels[None, :, :] if channels == 1 else pixels.transpose(2, 0, 1)


def _read_url(url: ImageUrl) -> bytes:
    import fsspec

    try:
        with fsspec.open(str(url), "rb") as handle:
            data: bytes = handle.read()
    except (OSError, ValueError, ImportError) as exc:  # missing, refused, no such protocol
        raise ImageError("not_an_image", f"cannot read {url}: {exc}") from None
    return data
