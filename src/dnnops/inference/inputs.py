"""From request tensors (v2) or instances (v1) to the raw inputs the model's preprocessing
takes, held to the version's schema and the input policy at the boundary.

A model whose inputs are all numbers takes one tensor ``input`` shaped ``[N, columns]``
(tables) or ``[N, *shape]`` (tensors). A table with category columns takes one tensor per
column, named after it (BYTES for categories). Tables become a ``TableBatch`` straight
from the parsed JSON, one list per column (no DataFrame per request). Violations are 422s
naming the tensor or feature and the rule (``InputViolation``, answered 422 by the
server and raised as a usage error by the Python API). The server, batch prediction and the
Python API all hold their inputs here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnnops.config import ServeConfig
from dnnops.data.policy import Counts, InputPolicy, PolicyViolation, enforce_table, enforce_tensor
from dnnops.data.preprocess import Preprocessor
from dnnops.data.schema import ColumnSchema, Schema
from dnnops.data.table import (
    ColumnKind,
    ColumnValueError,
    TableBatch,
    category_keys,
    column_kind,
    from_values,
    number_matrix,
)
from dnnops.errors import InputViolation, MalformedInput

NUMERIC_TYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
}
INPUT = "input"


@dataclass(frozen=True)
class InferInput:
    """One input tensor of a v2 request (``serve/protocol.py`` parses it)."""

    name: str
    datatype: str
    array: np.ndarray
    """Shaped as the request's ``shape``; BYTES as an object array of ``bytes``."""


ServedInputs = np.ndarray | TableBatch


@dataclass(frozen=True)
class Checked:
    """Inputs that passed the boundary, and the problems accepted on the way."""

    raw: ServedInputs
    anomalies: Counts


class InputAdapter:
    def __init__(
        self, schema: Schema, policy: ServeConfig, pre: Preprocessor, *, input_name: str = INPUT
    ) -> None:
        self.schema = schema
        self.input_name = input_name
        self.policy = InputPolicy.of(policy)
        self.columns = schema.columns
        self.names = [c.name for c in schema.columns]
        self.kinds: dict[str, ColumnKind] = {c.name: column_kind(c.type) for c in schema.columns}
        self.per_column = schema.kind == "table" and "category" in self.kinds.values()
        self.number_names = [n for n, k in self.kinds.items() if k != "category"]
        self.category_names = [n for n, k in self.kinds.items() if k == "category"]
        self.tensor_fill = pre.tensor_offset  # what preprocessing maps to 0
        strict = self.policy.coerce == "strict"
        self.no_bools = [
            i for i, c in enumerate(schema.columns) if strict and c.type in ("float", "int")
        ]
        """Positions (in schema order) where a JSON boolean is refused: the number columns."""
        self.text_categories = frozenset(
            c.name for c in schema.columns if strict and c.type == "category" and not _numeric(c)
        )
        """Category columns whose training values were text: a JSON number is refused."""
        if schema.kind == "tensor" and schema.tensor is not None:
            self.instance_shape = list(schema.tensor.shape)
        else:
            self.instance_shape = [len(self.columns)]

    # -- metadata ---------------------------------------------------------------------

    def metadata(self) -> list[dict[str, Any]]:
        if not self.per_column:
            return [
                {"name": self.input_name, "datatype": "FP32", "shape": [-1, *self.instance_shape]}
            ]
        return [
            {"name": c.name, "datatype": "BYTES" if c.type == "category" else "FP32", "shape": [-1]}
            for c in self.columns
        ]

    # -- v2 -----------------------------------------------------------------------------

    def from_v2(self, inputs: list[InferInput]) -> Checked:
        if self.per_column:
            return self._columns_from_v2(inputs)
        name = self.input_name
        if len(inputs) != 1 or inputs[0].name != name:
            names = [i.name for i in inputs]
            raise InputViolation(f"this model takes one input tensor named {name!r}, got {names}")
        tensor = inputs[0]
        if tensor.datatype not in NUMERIC_TYPES:
            raise InputViolation(f"input {name!r} must be numeric (FP32), got {tensor.datatype}")
        array = tensor.array
        if array.ndim == len(self.instance_shape):  # a single instance without the batch axis
            array = array[None]
        if list(array.shape[1:]) != self.instance_shape or len(array) == 0:
            raise InputViolation(
                f"input {name!r} has shape {list(tensor.array.shape)}; this model takes "
                f"[N, {', '.join(map(str, self.instance_shape))}] with N >= 1"
            )
        return self._numbers(array.astype("float64", copy=False))

    def _columns_from_v2(self, inputs: list[InferInput]) -> Checked:
        given = {i.name: i for i in inputs}
        missing = [n for n in self.names if n not in given]
        extra = sorted(set(given) - set(self.names))
        if missing or extra:
            raise InputViolation(f"input tensors: missing {missing}, unexpected {extra}")
        columns: dict[str, np.ndarray] = {}
        for name, kind in self.kinds.items():
            tensor = given[name]
            values = tensor.array.reshape(-1)
            if kind != "category" and tensor.datatype not in NUMERIC_TYPES:
                raise InputViolation(f"input {name!r} must be numeric, got {tensor.datatype}")
            if kind == "category":
                columns[name] = self._column(name, kind, _texts(name, values))
            else:
                columns[name] = self._column(name, kind, values)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise InputViolation(f"input tensors have different or zero lengths: {sorted(lengths)}")
        return self._table(TableBatch(columns, lengths.pop()))

    # -- v1 -----------------------------------------------------------------------------

    def from_v1(self, instances: Any) -> Checked:
        if not isinstance(instances, list) or not instances:
            raise MalformedInput("'instances' must be a non-empty list")
        if all(isinstance(i, dict) for i in instances):
            return self._from_objects(instances)
        if any(isinstance(i, dict) for i in instances):
            raise MalformedInput("'instances' mixes objects and lists")
        if self.schema.kind == "table":
            return self._from_rows(instances)
        try:
            array = np.array(instances, dtype="float64")
        except (ValueError, TypeError):
            raise InputViolation(
                f"instances must be numbers shaped {self.instance_shape}"
            ) from None
        if list(array.shape[1:]) != self.instance_shape:
            raise InputViolation(
                f"instances have shape {list(array.shape[1:])}; "
                f"this model takes {self.instance_shape}"
            )
        return self._numbers(array)

    def _from_rows(self, instances: list[Any]) -> Checked:
        """Lists of values in schema order."""
        width = len(self.names)
        for position, row in enumerate(instances):
            if not isinstance(row, list) or len(row) != width:
                raise InputViolation(
                    f"instances[{position}]: each instance needs {width} values in schema order "
                    f"({', '.join(self.names[:5])}{', ...' if width > 5 else ''}) "
                    "or an object keyed by feature"
                )
        if not self.per_column:
            return self._numbers(self._matrix(instances))
        columns = {
            name: self._column(name, kind, [row[i] for row in instances])
            for i, (name, kind) in enumerate(self.kinds.items())
        }
        return self._table(TableBatch(columns, len(instances)))

    def _from_objects(self, instances: list[dict[str, Any]]) -> Checked:
        if self.schema.kind == "tensor":
            raise InputViolation("this model takes tensors: send nested lists, not objects")
        width = len(self.names)
        try:
            if any(len(i) != width for i in instances):
                raise KeyError
            if not self.per_column:
                rows = [[i[n] for n in self.names] for i in instances]
                return self._numbers(self._matrix(rows))
            numbers = [[i[n] for n in self.number_names] for i in instances]
            categories = {n: [i[n] for i in instances] for n in self.category_names}
        except KeyError:
            raise self._key_error(instances) from None
        return self._table(self._mixed(numbers, categories))

    def _mixed(self, numbers: list[list[Any]], categories: dict[str, list[Any]]) -> TableBatch:
        """Numbers (and bools) as one block, categories as keys: no per-column arrays."""
        if self.no_bools:
            positions = [i for i, n in enumerate(self.number_names) if self.kinds[n] == "numeric"]
            _refuse_bools(self.number_names, numbers, positions)
        for name in self.text_categories:
            _refuse_numbers(name, categories[name])
        try:
            block = number_matrix(self.number_names, numbers) if self.number_names else None
        except ColumnValueError:
            block = None  # a bool as text ("yes"), or a bad value: column by column, named
            if not self.number_names:
                raise
        if block is None and self.number_names:
            block = np.column_stack(
                [
                    self._column(n, self.kinds[n], [row[i] for row in numbers])
                    for i, n in enumerate(self.number_names)
                ]
            )
        columns = {n: category_keys(v) for n, v in categories.items()}
        if block is None:
            return TableBatch(columns, len(next(iter(categories.values()))))
        columns.update({n: block[:, i] for i, n in enumerate(self.number_names)})
        return TableBatch(columns, len(block), block, tuple(self.number_names))

    def _key_error(self, instances: list[dict[str, Any]]) -> InputViolation:
        for position, instance in enumerate(instances):
            missing = [n for n in self.names if n not in instance]
            extra = sorted(set(instance) - set(self.names))
            if missing or extra:
                return InputViolation(
                    f"instances[{position}]: missing features {missing[:5]}, "
                    f"unknown features {extra[:5]}"
                )
        return InputViolation("every instance needs exactly the schema's features")

    # -- checks -------------------------------------------------------------------------

    def _column(self, name: str, kind: ColumnKind, values: Any) -> np.ndarray:
        if name in self.text_categories:
            _refuse_numbers(name, values)
        elif kind == "numeric" and self.no_bools and isinstance(values, list):
            _refuse_bools([name] * len(values), [values], list(range(len(values))))
        try:
            return from_values(name, kind, values)
        except ColumnValueError as exc:
            raise InputViolation(str(exc)) from None

    def _matrix(self, rows: list[Any]) -> np.ndarray:
        if self.no_bools:
            _refuse_bools(self.names, rows, self.no_bools)
        try:
            return number_matrix(self.names, rows)
        except ColumnValueError as exc:
            raise InputViolation(str(exc)) from None

    def _numbers(self, array: np.ndarray) -> Checked:
        """All-number inputs: a tensor instance, or table rows in schema order."""
        if self.schema.kind == "tensor" and self.schema.tensor is not None:
            try:
                checked, counts = enforce_tensor(
                    array,
                    self.schema.tensor,
                    self.schema.range_tolerance,
                    policy=self.policy,
                    fill=self.tensor_fill,
                )
            except PolicyViolation as exc:
                raise InputViolation(str(exc)) from None
            return Checked(checked, counts)
        return self._table(TableBatch.of_matrix(self.names, array))

    def _table(self, batch: TableBatch) -> Checked:
        try:
            checked, counts = enforce_table(batch, self.schema, self.policy)
        except PolicyViolation as exc:
            raise InputViolation(str(exc)) from None
        return Checked(checked, counts)


COERCE_FIX = "or set serve.coerce: lenient to accept it"


def _numeric(column: ColumnSchema) -> bool:
    """Whether every training value of a category column reads as a number (an integer
    code forced categorical), so a JSON number names a category as well as a string."""
    for value in column.categories or []:
        try:
            float(value)
        except ValueError:
            return False
    return True


def _refuse_bools(names: list[str], rows: list[Any], positions: list[int]) -> None:
    """A JSON ``true`` or ``false`` where a number column expects a number: 422 naming it.
    One set of types per row (C speed): the common row holds no boolean at all."""
    for row in rows:
        if not isinstance(row, list) or bool not in set(map(type, row)):
            continue
        for i in positions:
            if i < len(row) and type(row[i]) is bool:
                raise InputViolation(
                    f"feature {names[i]!r}: got {json.dumps(row[i])}, a boolean, where a "
                    f"number is expected (serve.coerce: strict); send 1 or 0, {COERCE_FIX}"
                )


def _refuse_numbers(name: str, values: list[Any]) -> None:
    """A JSON number (or boolean) for a category whose training values were text."""
    for value in values:
        if value is not None and type(value) is not str:
            raise InputViolation(
                f"feature {name!r}: got {json.dumps(value)}, a {type(value).__name__}, for a "
                f"text category (serve.coerce: strict); send it as a string, {COERCE_FIX}"
            )


def _texts(name: str, values: np.ndarray) -> list[Any]:
    """A BYTES column's values as text: bytes that are not UTF-8 are the client's error."""
    texts: list[Any] = []
    for row, value in enumerate(values):
        try:
            texts.append(value.decode("utf-8") if isinstance(value, bytes) else value)
        except UnicodeDecodeError:
            raise InputViolation(f"input {name!r}[{row}]: the bytes are not UTF-8") from None
    return texts
