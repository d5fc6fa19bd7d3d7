"""Turn pydantic's validation errors into lines a person can act on.

Each line names the key path as written in the file (``train.epochs``,
``evaluate.gates[0].min``), what was found, and what is allowed; an unknown key also
lists the keys allowed at that place and the closest match.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


def key_path(loc: tuple[int | str, ...]) -> str:
    """``("evaluate", "gates", 0, "min")`` -> ``evaluate.gates[0].min``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_internal(part):
            out += f".{part}" if out else part
    return out or "(top level)"


def _is_internal(part: str) -> bool:
    # pydantic inserts validator names such as "function-before[...]" into locations.
    return "[" in part and part.endswith("]")


def format_validation_error(
    exc: ValidationError,
    root: type[BaseModel],
    origin: str,
    *,
    prefix: tuple[str, ...] = (),
) -> str:
    """One line per error; ``prefix`` is where ``root`` sits in the file (``model.params``)."""
    lines = [f"{origin} is not a valid project file:"]
    for error in exc.errors(include_url=False):
        lines.append(f"  {key_path(prefix + error['loc'])}: {_describe(error, root)}")
    return "\n".join(lines)


def _describe(error: ErrorDetails, root: type[BaseModel]) -> str:
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"], root)
    if error["type"] == "missing":
        return "required key is missing"
    got = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" or isinstance(got, dict | list):
        return message  # our own messages already quote the value
    return f"{message} (got {got!r})"


def _unknown_key(loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    parent = _model_at(loc[:-1], root)
    key = str(loc[-1])
    if parent is None:
        return "unknown key"
    allowed = sorted(field.alias or name for name, field in parent.model_fields.items())
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key; allowed here: {', '.join(allowed)}{hint}"


def _model_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """Follow ``loc`` through nested models (and lists of models) from ``root``."""
    current: Any = root
    for part in loc:
        if isinstance(part, int) or _is_internal(part):
            continue
        model = _as_model(current)
        if model is None:
            return None
        field = _field_by_key(model, part)
        if field is None:
            return None
        current = field
    return _as_model(current)


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    """Unwrap ``X | None``, ``list[X]`` and ``Annotated[X, ...]`` down to a model class."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _as_model(arg)
            if found is not None:
                return found
    return None
