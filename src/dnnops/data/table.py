"""Raw table rows held by column: what every source of tabular inputs becomes before
preprocessing (a DataFrame, JSON objects keyed by feature, lists in schema order, v2
tensors per column), so one encoder serves training, batch prediction and the server.

Numbers and bools are float64 columns (NaN where missing); categories are object columns
of canonical keys (``category_key``), ``None`` where missing. Building one from JSON is a
list per column, not a DataFrame per request (measured: pandas cost ~0.5 ms a request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from dnnops.data.schema import category_key

ColumnKind = Literal["numeric", "bool", "category", "image", "text"]
_TRUE = frozenset({"true", "1", "1.0", "yes"})
_FALSE = frozenset({"false", "0", "0.0", "no"})


def column_kind(schema_type: str) -> ColumnKind:
    """How a schema column type (float, int, bool, category, image, text) is held in a
    batch: images and texts as objects (bytes, paths, strings), ``None`` where missing."""
    if schema_type in ("category", "bool", "image", "text"):
        return schema_type  # type: ignore[return-value]
    return "numeric"


class ColumnValueError(ValueError):
    """A value a column cannot hold (text in a number column); names the column."""

    def __init__(self, column: str, value: object, expected: str) -> None:
        super().__init__(f"feature {column!r} must be {expected}, got {value!r}")
        self.column = column


@dataclass(frozen=True, slots=True)
class TableBatch:
    """``rows`` table rows as one array per column, keyed by feature name."""

    columns: Mapping[str, np.ndarray]
    rows: int
    numeric: np.ndarray | None = None
    """The number columns as one (N, k) block, when the batch was built from one (rows of
    numbers): the policy and the encoder then use it without stacking columns."""
    numeric_names: tuple[str, ...] = ()

    @classmethod
    def of_matrix(cls, names: Sequence[str], matrix: np.ndarray) -> TableBatch:
        columns = {name: matrix[:, i] for i, name in enumerate(names)}
        return cls(columns, len(matrix), matrix, tuple(names))

    def numeric_block(self, names: Sequence[str]) -> np.ndarray:
        """The columns ``names`` as one (N, len(names)) float64 block."""
        if self.numeric is not None and self.numeric_names == tuple(names):
            return self.numeric
        if not names:
            return np.zeros((self.rows, 0))
        return np.column_stack([self.columns[n] for n in names]).astype("float64", copy=False)

    def with_numeric(self, names: Sequence[str], block: np.ndarray) -> TableBatch:
        """The same batch with the columns ``names`` replaced by ``block``."""
        columns = dict(self.columns)
        columns.update({name: block[:, i] for i, name in enumerate(names)})
        return TableBatch(columns, self.rows, block, tuple(names))

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per row (NaN and None both mean missing), for the prediction log."""
        names = list(self.columns)
        values = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def from_frame(frame: pd.DataFrame, kinds: Mapping[str, ColumnKind]) -> TableBatch:
    """The batch of a DataFrame's feature columns. Text in a number column is refused
    (``ColumnValueError`` naming it), as the server refuses it, never imputed as missing."""
    columns: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        series = frame[name]
        if kind in ("image", "text"):
            cells = series.to_numpy(dtype=object)
            columns[name] = np.array([None if _missing(v) else v for v in cells], dtype=object)
        elif kind == "category":
            columns[name] = category_keys(series.to_numpy(dtype=object))
        elif kind == "bool":
            columns[name] = _bool_column(name, series.to_numpy(dtype=object), strict=False)
        else:
            numbers = pd.to_numeric(series, errors="coerce")
            text = numbers.isna() & series.notna()
            if text.any():
                raise ColumnValueError(name, series[text].iloc[0], "a number")
            columns[name] = numbers.to_numpy(dtype="float64", na_value=np.nan)
    return TableBatch(columns, len(frame))


def from_values(name: str, kind: ColumnKind, values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """One column from JSON values: numbers (``None`` missing), booleans, category values.
    Raises ``ColumnValueError`` naming the column for a value of the wrong kind."""
    if kind == "category":
        return category_keys(values)
    if kind == "bool":
        return _bool_column(name, values, strict=True)
    try:
        column = np.array(values, dtype="float64")
    except (TypeError, ValueError):
        bad = next(v for v in values if not _is_number(v))
        raise ColumnValueError(name, bad, "a number") from None
    if column.ndim != 1:
        raise ColumnValueError(name, values[0], "a number")
    return column


def number_matrix(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> np.ndarray:
    """Rows of numbers as one (N, len(names)) float64 matrix; the feature of a bad value
    is named."""
    try:
        matrix = np.array(rows, dtype="float64")
    except (TypeError, ValueError):
        for row in rows:
            for name, value in zip(names, row, strict=False):
                if not _is_number(value):
                    raise ColumnValueError(name, value, "a number") from None
        raise ColumnValueError(names[0], rows[0], f"{len(names)} numbers") from None
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ColumnValueError(names[0], rows[0], f"a row of {len(names)} numbers")
    return matrix


SMALL = 64
"""Up to this many values, per-value Python beats building arrays (a request's rows);
beyond it, columns are factorized once and only their distinct values are looked at."""


def lookup(keys: np.ndarray, table: Mapping[Any, int], default: int = -1) -> np.ndarray:
    """``table[key]`` for every key (``default`` where absent; a missing key, None, gets
    ``table[None]`` when the table has one), as int64: per distinct value for large
    columns (``pd.factorize``), so a million rows of a few categories cost a few
    dictionary lookups."""
    if len(keys) <= SMALL:
        return np.fromiter((table.get(k, default) for k in keys), dtype="int64", count=len(keys))
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    found = np.array(
        [table.get(u, default) for u in uniques] + [table.get(None, default)], dtype="int64"
    )
    result: np.ndarray = found[codes]  # code -1 (missing) takes the last entry
    return result


def category_keys(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Canonical keys (3, 3.0 and "3" are one category); ``None`` for missing values."""
    if len(values) > SMALL:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        canonical = np.empty(len(uniques) + 1, dtype=object)
        canonical[:-1] = [category_key(u) for u in uniques]
        canonical[-1] = None
        keys: np.ndarray = canonical[codes]
        return keys
    out = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        if type(value) is str:  # the common case, without the generic checks
            out[position] = value
        elif _missing(value):
            out[position] = None
        else:
            out[position] = category_key(value)
    return out


def _bool_column(name: str, values: Sequence[Any] | np.ndarray, *, strict: bool) -> np.ndarray:
    out = np.empty(len(values), dtype="float64")
    for position, value in enumerate(values):
        out[position] = _bool_value(name, value, strict)
    return out


def _missing(value: Any) -> bool:
    """None, NaN (float or numpy), pandas' NA or NaT: a value that is not there."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and value != value


def _bool_value(name: str, value: Any, strict: bool) -> float:
    if _missing(value):
        return np.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE or not strict:
        return 0.0
    raise ColumnValueError(name, value, "true or false")


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
