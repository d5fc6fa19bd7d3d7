"""Requests to a model whose input is one image or text column.

v1 (KServe's and TF Serving's convention): ``{"instances": [{"b64": "..."}]}`` or
``[{"image": {"b64": "..."}}]`` for images, ``["text", ...]`` or ``[{"ticket": "..."}]``
for text. v2: one BYTES tensor, raw image bytes or UTF-8 strings per element, as
``tritonclient`` sends them. What comes out is a one-column ``TableBatch`` of bytes or
strings; decoding and tokenizing are preprocessing's (``data/media/encode.py``), whose
errors name the instance and the rule and answer 422.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.data.schema import ColumnSchema
from dnnops.data.table import TableBatch
from dnnops.errors import InputViolation, MalformedInput
from dnnops.inference.inputs import Checked, InferInput

B64 = "b64"


class MediaAdapter:
    """The ``InputAdapter`` of an image or text model (same methods)."""

    def __init__(self, column: ColumnSchema, *, input_name: str | None = None) -> None:
        self.column = column
        self.name = column.name
        self.image = column.type == "image"
        self.input_names = {column.name, input_name or column.name}

    def metadata(self) -> list[dict[str, Any]]:
        return [{"name": self.name, "datatype": "BYTES", "shape": [-1]}]

    def from_v1(self, instances: Any) -> Checked:
        if not isinstance(instances, list) or not instances:
            raise MalformedInput("'instances' must be a non-empty list")
        cells = [self._cell(i, instance) for i, instance in enumerate(instances)]
        return self._checked(cells)

    def from_v2(self, inputs: list[InferInput]) -> Checked:
        if len(inputs) != 1 or inputs[0].name not in self.input_names:
            names = [i.name for i in inputs]
            raise InputViolation(
                f"this model takes one BYTES input named {self.name!r}, got {names}"
            )
        tensor = inputs[0]
        if tensor.datatype != "BYTES":
            holds = "image files" if self.image else "UTF-8 text"
            raise InputViolation(
                f"input {self.name!r} must be BYTES ({holds}), got {tensor.datatype}"
            )
        values = tensor.array.reshape(-1)
        if not len(values):
            raise InputViolation(f"input {self.name!r} holds no instances")
        if self.image:
            return self._checked([bytes(v) for v in values])
        texts = []
        for i, value in enumerate(values):
            try:
                texts.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
            except UnicodeDecodeError:
                raise InputViolation(f"instance {i}: not_text: the bytes are not UTF-8") from None
        return self._checked(texts)

    def _cell(self, position: int, instance: Any) -> object:
        if isinstance(instance, dict) and self.name in instance and len(instance) == 1:
            instance = instance[self.name]
        if self.image:
            return _image_bytes(position, instance, self.name)
        if isinstance(instance, str):
            return instance
        raise InputViolation(
            f"instance {position}: not_text: send a string or {{{self.name!r}: string}}, got "
            f"{type(instance).__name__}"
        )

    def from_python(self, values: Sequence[object]) -> Checked:
        """The Python API's values: for images PIL images, paths (``str`` or ``Path``: this
        is the caller's own process, not a server) or bytes; for text, strings."""
        if not len(values):
            raise InputViolation("no instances to predict")
        if not self.image:
            return self._checked([self._cell(i, v) for i, v in enumerate(values)])
        return self._checked([_python_image(i, v) for i, v in enumerate(values)])

    def _checked(self, cells: Sequence[object]) -> Checked:
        column = np.empty(len(cells), dtype=object)
        column[:] = cells
        return Checked(TableBatch({self.name: column}, len(cells)), Counter())


def _python_image(position: int, value: object) -> object:
    if isinstance(value, bytes | Path):
        return value
    if isinstance(value, str):
        return Path(value)
    if is_pil_image(value):
        return png_bytes(value)
    raise InputViolation(
        f"instance {position}: not_an_image: pass PIL images, paths or bytes, got "
        f"{type(value).__name__}"
    )


def is_pil_image(value: object) -> bool:
    return hasattr(value, "save") and hasattr(value, "mode")


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG: every pixel kept, whatever its mode."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _image_bytes(position: int, instance: Any, name: str) -> bytes:
    if not (
        isinstance(instance, dict) and set(instance) == {B64} and isinstance(instance[B64], str)
    ):
        raise InputViolation(
            f'instance {position}: not_an_image: send {{"b64": "<base64 of the file>"}} '
            f'or {{{name!r}: {{"b64": ...}}}}'
        )
    try:
        return base64.b64decode(instance[B64], validate=True)
    except (binascii.Error, ValueError):
        raise InputViolation(
            f"instance {position}: bad_base64: the b64 text is not base64"
        ) from None
