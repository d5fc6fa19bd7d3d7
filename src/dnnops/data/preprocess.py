"""Fitted preprocessing, stored as JSON and applied by ONE function in training and serving.

``apply_preprocessing`` is the only code path from raw inputs to the model's tensor, so
the server cannot drift from what training did (no train/serve skew).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, PrivateAttr

from dnnops.config import ImageConfig, PreprocessingConfig, TextConfig
from dnnops.data.dataset import Dataset, Inputs
from dnnops.data.schema import Schema
from dnnops.data.table import TableBatch, from_frame, lookup
from dnnops.errors import DataError


class ImageTransform(BaseModel):
    """An image column: decoded under ``max_pixels``, scaled and cut to ``size`` (height,
    width), normalized per channel."""

    model_config = ConfigDict(frozen=True)
    size: tuple[int, int]
    channels: int
    mean: list[float]
    std: list[float]
    max_pixels: int


class TextTransform(BaseModel):
    """A text column: the tokenizer trained on the training split (its JSON document),
    the ids the model reads per text, and what an over-long or empty text gets."""

    model_config = ConfigDict(frozen=True)
    tokenizer: str
    max_length: int
    vocab_size: int
    too_long: Literal["truncate", "reject"] = "truncate"
    empty: Literal["accept", "reject"] = "reject"


class ColumnTransform(BaseModel):
    """Numeric and bool columns: ``(x - offset) / scale``, missing -> ``fill``; with
    ``bins`` (ascending edges), a number is followed by its piecewise-linear encoding: per
    bin, how far the value has come through it, from 0 to 1. Category columns: one-hot
    over ``categories`` (unseen or missing -> all zeros), or, with ``hash_buckets``,
    one-hot over the CRC-32 of the value modulo that many buckets (an identifier-like
    column with thousands of values; missing -> all zeros)."""

    model_config = ConfigDict(frozen=True)
    name: str
    type: Literal["numeric", "bool", "category", "image", "text"]
    offset: float = 0.0
    scale: float = 1.0
    fill: float = 0.0
    categories: list[str] | None = None
    hash_buckets: int | None = None
    bins: list[float] | None = None
    image: ImageTransform | None = None
    text: TextTransform | None = None

    @property
    def shape(self) -> list[int]:
        """The model's input shape when this column is its only input."""
        if self.image is not None:
            return [self.image.channels, *self.image.size]
        return [self.width]

    @property
    def width(self) -> int:
        if self.image is not None:
            return self.image.channels * self.image.size[0] * self.image.size[1]
        if self.text is not None:
            return self.text.max_length
        if self.hash_buckets is not None:
            return self.hash_buckets
        if self.bins is not None:
            return len(self.bins)  # the number, then one input per bin (edges - 1)
        return len(self.categories) if self.categories is not None else 1


def hash_bucket(key: str, buckets: int) -> int:
    """A category's bucket: stable across processes and releases (CRC-32, not ``hash``)."""
    return zlib.crc32(key.encode("utf-8")) % buckets


class Preprocessor(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["table", "tensor"]
    columns: list[ColumnTransform] = []
    tensor_offset: float = 0.0
    tensor_scale: float = 1.0
    input_shape: list[int]
    """The shape of one instance as the model receives it."""
    _layout: Any = PrivateAttr(default=None)

    @property
    def feature_width(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def medium(self) -> ColumnTransform | None:
        """The image or text column, when the model's input is one."""
        return next((c for c in self.columns if c.type in ("image", "text")), None)

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary of a text input; 0 for other inputs."""
        return next((c.text.vocab_size for c in self.columns if c.text is not None), 0)

    @property
    def category_blocks(self) -> tuple[tuple[int, int], ...]:
        """(first input, inputs) of each category column in the encoded row."""
        blocks, start = [], 0
        for column in self.columns:
            if column.type == "category":
                blocks.append((start, column.width))
            start += column.width
        return tuple(blocks)


def fit_preprocessor(
    dataset: Dataset,
    schema: Schema,
    config: PreprocessingConfig,
    *,
    input_shape: Sequence[int] | None = None,
    media: ImageConfig | TextConfig | None = None,
) -> Preprocessor:
    """Learn offsets, scales and category sets (a text column's tokenizer) from training
    data only."""
    if isinstance(dataset.inputs, np.ndarray):
        offset, scale = _fit_affine(dataset.inputs.astype("float64").ravel(), config)
        natural = list(dataset.inputs.shape[1:])
        shape = _checked_shape(natural, input_shape)
        return Preprocessor(
            kind="tensor", tensor_offset=offset, tensor_scale=scale, input_shape=shape
        )
    medium = schema.medium
    if medium is not None:
        column = _fit_medium(dataset.inputs[medium.name], medium.name, medium.type, media=media)
        shape = _checked_shape(column.shape, input_shape)
        return Preprocessor(kind="table", columns=[column], input_shape=shape)
    columns = _fit_columns(dataset.inputs, schema, config)
    width = sum(c.width for c in columns)
    return Preprocessor(
        kind="table", columns=columns, input_shape=_checked_shape([width], input_shape)
    )


def _fit_medium(
    values: pd.Series, name: str, kind: str, *, media: ImageConfig | TextConfig | None
) -> ColumnTransform:
    """An image column's transform as configured; a text column's tokenizer, trained on
    the training split's texts."""
    if kind == "image":
        image = media if isinstance(media, ImageConfig) else ImageConfig(column=name)
        mean, std = image.normalization
        transform = ImageTransform(
            size=(image.size[0], image.size[1]),
            channels=image.channels,
            mean=mean,
            std=std,
            max_pixels=image.max_pixels,
        )
        return ColumnTransform(name=name, type="image", image=transform)
    if not isinstance(media, TextConfig):
        raise DataError(f"the text column {name!r} needs data.text in dnnops.yaml")
    from dnnops.data.media.text import train_tokenizer

    texts = [str(v) for v in values.dropna().to_numpy(dtype=object)]
    document = train_tokenizer(
        texts, kind=media.tokenizer, vocab_size=media.vocab_size, lowercase=media.lowercase
    )
    from dnnops.data.media.encode import text_encoder

    text = TextTransform(
        tokenizer=document,
        max_length=media.max_length,
        vocab_size=text_encoder(document, media.max_length).vocab_size,
        too_long=media.too_long,
        empty=media.empty,
    )
    return ColumnTransform(name=name, type="text", text=text)


def apply_preprocessing(
    pre: Preprocessor, inputs: Inputs | TableBatch, *, inference: bool = False
) -> np.ndarray:
    """Raw inputs -> float32 array shaped ``(N, *pre.input_shape)``. ``inference``: apply
    a text column's policy for empty and over-long texts (``data.text``); training and
    evaluation read every text (cut to ``max_length``), as a table's rows are read."""
    if pre.kind == "tensor":
        if not isinstance(inputs, np.ndarray):
            raise DataError("this model takes tensor inputs, not a table")
        scaled = (inputs.astype("float32") - np.float32(pre.tensor_offset)) / np.float32(
            pre.tensor_scale
        )
        return scaled.reshape(len(inputs), *pre.input_shape)
    batch = inputs if isinstance(inputs, TableBatch) else table_batch(pre, inputs)
    return _encode(pre, batch, inference=inference).reshape(batch.rows, *pre.input_shape)


def table_batch(pre: Preprocessor, inputs: Inputs) -> TableBatch:
    """A DataFrame (by column name) or an array of rows in schema order, by column."""
    kinds = {c.name: c.type for c in pre.columns}
    if isinstance(inputs, pd.DataFrame):
        missing = [n for n in kinds if n not in inputs.columns]
        if missing:
            raise DataError(f"inputs lack the columns {missing[:5]}")
        return from_frame(inputs, kinds)
    if inputs.ndim != 2 or inputs.shape[1] != len(kinds):
        raise DataError(
            f"expected rows of {len(kinds)} values in schema order, got shape {inputs.shape}"
        )
    if np.issubdtype(inputs.dtype, np.number) and "category" not in kinds.values():
        return TableBatch.of_matrix(list(kinds), inputs.astype("float64", copy=False))
    return from_frame(pd.DataFrame(inputs, columns=list(kinds)), kinds)


@dataclass(frozen=True)
class _Layout:
    """Where each column lands in the model's input row, computed once per preprocessor."""

    numeric: list[str]
    positions: np.ndarray
    is_bool: np.ndarray
    fill: np.ndarray
    offset: np.ndarray
    scale: np.ndarray
    categories: list[tuple[str, int, dict[str, int]]]
    """(column, first position, category -> index) per one-hot category column."""
    hashed: list[tuple[str, int, int]]
    """(column, first position, buckets) per hashed category column."""
    binned: list[tuple[int, int, np.ndarray]]
    """(index among ``numeric``, first position, edges) per number with bins."""
    width: int


def _layout(pre: Preprocessor) -> _Layout:
    cached = pre._layout
    if isinstance(cached, _Layout):
        return cached
    numeric = [c for c in pre.columns if c.type != "category"]
    starts = np.cumsum([0] + [c.width for c in pre.columns])
    where = {c.name: int(starts[i]) for i, c in enumerate(pre.columns)}
    layout = _Layout(
        numeric=[c.name for c in numeric],
        positions=np.array([where[c.name] for c in numeric], dtype="int64"),
        is_bool=np.array([c.type == "bool" for c in numeric]),
        fill=np.array([c.fill for c in numeric]),
        offset=np.array([c.offset for c in numeric]),
        scale=np.array([c.scale for c in numeric]),
        categories=[
            (c.name, where[c.name], {k: i for i, k in enumerate(c.categories or [])})
            for c in pre.columns
            if c.type == "category" and c.hash_buckets is None
        ],
        hashed=[
            (c.name, where[c.name], c.hash_buckets)
            for c in pre.columns
            if c.type == "category" and c.hash_buckets is not None
        ],
        binned=[
            (i, where[c.name] + 1, np.array(c.bins, dtype="float64"))
            for i, c in enumerate(numeric)
            if c.bins is not None
        ],
        width=int(starts[-1]),
    )
    pre._layout = layout
    return layout


def _encode(pre: Preprocessor, batch: TableBatch, *, inference: bool = False) -> np.ndarray:
    """Standardized numbers (missing and infinite -> the training mean), bools as 0/1 and
    one-hot categories (missing or unseen -> all zeros), in the columns' order."""
    if len(pre.columns) == 1 and pre.columns[0].type in ("image", "text"):
        medium = pre.columns[0]
        return _encode_medium(medium, batch.columns[medium.name], inference=inference)
    layout = _layout(pre)
    out = np.zeros((batch.rows, layout.width), dtype="float32")
    if layout.numeric and batch.rows:
        _encode_numbers(layout, batch.numeric_block(layout.numeric), out)
    for name, start, index in layout.categories:
        keys = batch.columns[name]
        if batch.rows <= SMALL_BATCH:  # a request's few rows: no array round trips
            for row, key in enumerate(keys):
                position = index.get(key)
                if position is not None:
                    out[row, start + position] = 1.0
            continue
        found = lookup(keys, index)
        rows = np.flatnonzero(found >= 0)
        out[rows, start + found[rows]] = 1.0
    for name, start, buckets in layout.hashed:
        found = _buckets(batch.columns[name], buckets)
        rows = np.flatnonzero(found >= 0)
        out[rows, start + found[rows]] = 1.0
    return out


def _encode_medium(column: ColumnTransform, values: np.ndarray, *, inference: bool) -> np.ndarray:
    from dnnops.data.media.encode import encode_images, encode_texts

    if column.image is not None:
        image = column.image
        return encode_images(
            list(values),
            size=image.size,
            channels=image.channels,
            mean=image.mean,
            std=image.std,
            max_pixels=image.max_pixels,
        )
    if column.text is None:
        raise DataError(f"column {column.name!r} has no image or text transform")
    text = column.text
    return encode_texts(
        list(values),
        tokenizer=text.tokenizer,
        max_length=text.max_length,
        too_long=text.too_long if inference else "truncate",
        empty=text.empty if inference else "accept",
    )


def describe_inputs(
    pre: Preprocessor, inputs: Inputs | TableBatch, x: np.ndarray
) -> list[dict[str, float]] | None:
    """An image or text model's descriptors per instance (``data/media/descriptors.py``),
    from the raw inputs and their model input ``x``; None for other models."""
    medium = pre.medium
    if medium is None:
        return None
    from dnnops.data.media.descriptors import image_descriptors, text_descriptors

    batch = inputs if isinstance(inputs, TableBatch) else table_batch(pre, inputs)
    cells = list(batch.columns[medium.name])
    if medium.image is not None:
        image = medium.image
        return image_descriptors(
            medium.name,
            cells,
            x,
            channels=image.channels,
            size=image.size,
            mean=image.mean,
            std=image.std,
        )
    assert medium.text is not None
    text = medium.text
    return text_descriptors(
        medium.name, cells, tokenizer=text.tokenizer, max_length=text.max_length
    )


def preview_inputs(pre: Preprocessor, x: np.ndarray) -> list[str] | None:
    """An image model's previews of what it saw (``image_previews``); None for others
    (a text is logged as it came)."""
    medium = pre.medium
    if medium is None or medium.image is None:
        return None
    from dnnops.data.media.descriptors import image_previews

    image = medium.image
    return image_previews(
        x, channels=image.channels, size=image.size, mean=image.mean, std=image.std
    )


def examples_of(pre: Preprocessor, x: np.ndarray) -> list[str]:
    """Model inputs as a person sees them: an image's preview, a text's tokens read back
    (what the model was given: lower-cased, cut at ``max_length``)."""
    medium = pre.medium
    if medium is not None and medium.text is not None:
        from dnnops.data.media.encode import text_encoder

        encoder = text_encoder(medium.text.tokenizer, medium.text.max_length)
        return [encoder.text_of(row.astype(np.int64)) for row in x]
    return preview_inputs(pre, x) or []


def _encode_numbers(layout: _Layout, values: np.ndarray, out: np.ndarray) -> None:
    """The numeric and bool columns of ``values`` (rows, numbers) into ``out``'s places."""
    filled = np.where(np.isfinite(values), values, layout.fill)
    scaled = np.where(layout.is_bool, filled != 0, (filled - layout.offset) / layout.scale)
    out[:, layout.positions] = scaled
    for number, start, edges in layout.binned:
        out[:, start : start + len(edges) - 1] = _piecewise_linear(filled[:, number], edges)


def typical_row(pre: Preprocessor) -> np.ndarray:
    """The model input of a typical instance of a table, shaped ``pre.input_shape``: each
    number at its training mean, encoded as ``apply_preprocessing`` would, and no
    category (the reference point of an explanation)."""
    layout = _layout(pre)
    out = np.zeros((1, layout.width), dtype="float32")
    if layout.numeric:
        _encode_numbers(layout, layout.fill[None, :], out)
    return out.reshape(pre.input_shape)


def _piecewise_linear(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(N, bins): 0 before a bin, 1 past it, the fraction of the way through inside it."""
    low, width = edges[:-1], np.diff(edges)
    encoded: np.ndarray = np.clip((values[:, None] - low) / width, 0.0, 1.0)
    return encoded


def quantile_edges(values: np.ndarray, bins: int) -> list[float] | None:
    """Up to ``bins`` bins' edges at the quantiles of the finite ``values`` (equal edges
    merged), or None for a column too plain to bin (two distinct values or fewer)."""
    finite = values[np.isfinite(values)]
    if bins < 1 or len(np.unique(finite)) <= 2:
        return None
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    return [float(e) for e in edges] if len(edges) >= 3 else None


def _buckets(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Each key's hash bucket (-1 for a missing value), hashing each distinct key once."""
    if len(keys) <= SMALL_BATCH:
        return np.array([-1 if k is None else hash_bucket(k, buckets) for k in keys], "int64")
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    found = np.array([hash_bucket(str(u), buckets) for u in uniques] + [-1], dtype="int64")
    result: np.ndarray = found[codes]
    return result


SMALL_BATCH = 16
"""Up to this many rows, one-hot cells are set in a Python loop (measured: 3x faster than
building index arrays for a single request)."""


def _checked_shape(natural: list[int], requested: Sequence[int] | None) -> list[int]:
    if requested is None:
        return natural
    if int(np.prod(requested)) != int(np.prod(natural)):
        raise DataError(
            f"model.input_shape {list(requested)} holds {int(np.prod(requested))} values but each "
            f"instance has {int(np.prod(natural))} after preprocessing; fix model.input_shape"
        )
    return list(requested)


def _fit_affine(values: np.ndarray, config: PreprocessingConfig) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if config.numeric == "none" or len(finite) == 0:
        return 0.0, 1.0
    if config.numeric == "scale":
        return 0.0, float(np.abs(finite).max()) or 1.0
    mean, std = float(finite.mean()), float(finite.std())
    # A constant column's std comes out as rounding noise (1e-11 for 3.5e5), not 0: treat
    # anything below float64 resolution at this magnitude as constant, or it blows up to ±1.
    if std <= 1e-9 * max(1.0, abs(mean)):
        std = 1.0
    return mean, std


def _fit_columns(
    frame: pd.DataFrame, schema: Schema, config: PreprocessingConfig
) -> list[ColumnTransform]:
    numeric = [c.name for c in schema.columns if c.type in ("float", "int")]
    shared_scale = 1.0
    if config.numeric == "scale" and numeric:
        values = frame[numeric].to_numpy(dtype="float64", na_value=np.nan)
        shared_scale = _fit_affine(values.ravel(), config)[1]
    out = []
    for column in schema.columns:
        if column.type == "category" and len(column.categories or []) > config.one_hot_max:
            out.append(
                ColumnTransform(name=column.name, type="category", hash_buckets=config.hash_buckets)
            )
        elif column.type == "category":
            out.append(
                ColumnTransform(name=column.name, type="category", categories=column.categories)
            )
        elif column.type == "bool":
            out.append(ColumnTransform(name=column.name, type="bool"))
        else:
            column_values = frame[column.name].to_numpy(dtype="float64", na_value=np.nan)
            offset, scale = _fit_affine(column_values, config)
            if config.numeric == "scale":
                offset, scale = 0.0, shared_scale
            finite = np.isfinite(column_values)
            mean = float(column_values[finite].mean()) if finite.any() else 0.0
            out.append(
                ColumnTransform(
                    name=column.name,
                    type="numeric",
                    offset=offset,
                    scale=scale,
                    fill=mean,
                    bins=quantile_edges(column_values, config.numeric_bins),
                )
            )
    return out
