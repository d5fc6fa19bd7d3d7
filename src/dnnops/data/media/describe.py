"""What a column of images or texts is like, for the schema: read from headers and
strings, never by decoding every pixel."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from dnnops.data.media.images import ImageError, read_image_bytes
from dnnops.data.media.specs import ImageSpec, TextSpec
from dnnops.errors import DataError

SAMPLE = 2000
"""Images whose headers are read to describe a column (evenly spaced over it)."""


def describe_images(column: pd.Series) -> ImageSpec:
    values = [v for v in column.to_numpy(dtype=object) if v is not None]
    if not values:
        raise DataError(f"the image column {column.name!r} holds no images")
    step = max(1, len(values) // SAMPLE)
    formats, modes, widths, heights = set(), set(), [], []
    for value in values[::step]:
        try:
            data = read_image_bytes(value)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    formats.add(str(image.format))
                    modes.add(image.mode)
                    widths.append(image.width)
                    heights.append(image.height)
        except (ImageError, UnidentifiedImageError, OSError, Image.DecompressionBombError):
            continue  # the policy judges each bad image when it is decoded
    if not widths:
        raise DataError(f"none of the {len(values)} files in {column.name!r} is an image")
    return ImageSpec(
        formats=sorted(formats),
        modes=sorted(modes),
        min_width=min(widths),
        max_width=max(widths),
        min_height=min(heights),
        max_height=max(heights),
    )


def describe_texts(column: pd.Series) -> TextSpec:
    texts = [str(v) for v in column.dropna().to_numpy(dtype=object)]
    if not texts:
        raise DataError(f"the text column {column.name!r} holds no text")
    lengths = np.array([len(t) for t in texts], dtype="float64")
    characters = int(lengths.sum())
    ascii_characters = sum(sum(1 for ch in t if ord(ch) < 128) for t in texts)
    return TextSpec(
        min_length=int(lengths.min()),
        median_length=float(np.median(lengths)),
        p99_length=float(np.quantile(lengths, 0.99)),
        max_length=int(lengths.max()),
        ascii_share=ascii_characters / characters if characters else 1.0,
    )
