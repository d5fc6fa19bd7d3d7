"""Check data against a schema and report every problem, not just the first.

Each ``Finding`` names the column, the rule broken, how many rows break it and a few
examples, so a person can fix the file and a script can count the problems.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dnnops.data.policy import ANOMALIES, InputPolicy
from dnnops.data.preprocess import ColumnTransform, Preprocessor
from dnnops.data.schema import ColumnSchema, Schema, bounds, category_key
from dnnops.errors import DataError

Rule = Literal[
    "missing_column",
    "extra_column",
    "wrong_type",
    "null",
    "non_finite",
    "out_of_range",
    "unseen_category",
    "wrong_shape",
    # images and texts (data/media): the rules serving refuses them by
    "not_an_image",
    "unsupported_format",
    "too_many_pixels",
    "truncated",
    "empty",
    "too_long",
    "not_text",
]
MAX_EXAMPLES = 3
_BOOL_VALUES = {"true", "false", "1", "0", "1.0", "0.0"}


@dataclass(frozen=True)
class Finding:
    column: str
    rule: Rule
    rows: int
    """How many rows break the rule (0 for whole-column problems)."""
    examples: list[dict[str, Any]]
    """Up to three ``{"row": i, "value": v}`` with ``i`` the 0-based data row."""
    message: str
    action: str = "refused"
    """What serving does with these rows under the input policy: ``refused``, or how the
    problem is accepted (``imputed as in training``, ``clipped to the training range``)."""

    @property
    def refused(self) -> bool:
        return self.action == "refused"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judged(findings: list[Finding], policy: InputPolicy) -> list[Finding]:
    """Each finding with what ``policy`` does to it; problems outside the policy (a missing
    column, a wrong type) are always refused."""
    out = []
    for finding in findings:
        anomaly = "missing" if finding.rule == "null" else finding.rule
        if anomaly in ANOMALIES and not policy.refuses(anomaly):
            finding = replace(finding, action=policy.action(anomaly))
        out.append(finding)
    return out


def validate_file(
    path: Path,
    schema: Schema,
    policy: InputPolicy | None = None,
    *,
    preprocessor: Preprocessor | None = None,
) -> list[Finding]:
    """Validate a CSV, Parquet or NPZ file; the label column may be absent. With a
    ``policy``, each finding says whether serving refuses or accepts its rows. An image or
    text model's data (a folder of images, or a table with the column) is judged by the
    rules of its ``preprocessor`` (the version's decoder budget and tokenizer)."""
    if schema.medium is not None:
        if preprocessor is None:
            raise DataError(
                "images and texts are validated against a trained version's tokenizer and "
                "pixel budget: pass --model NAME@REF, or train the project first"
            )
        return validate_media(path, schema, preprocessor)
    findings = _validate_file(path, schema, policy or InputPolicy())
    return judged(findings, policy) if policy is not None else findings


def _validate_file(path: Path, schema: Schema, policy: InputPolicy) -> list[Finding]:
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise DataError(f"{path} has no array 'x'; it holds {archive.files}")
                return validate_tensor(archive["x"], schema)
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read {path} as NPZ: {exc}") from None
    from dnnops.data.sources import load_table

    return validate_frame(load_table(path), schema, policy)


def validate_media(path: Path, schema: Schema, preprocessor: Preprocessor) -> list[Finding]:
    """Every image of a folder or every cell of a table's image or text column, judged as
    serving judges it; the other columns must be ones the version ignores or its label."""
    from dnnops.data.media.folder import image_files, resolve_image_paths
    from dnnops.data.media.validate import image_problems, text_problems
    from dnnops.data.sources import load_table

    medium, column = schema.medium, preprocessor.medium
    if medium is None or column is None:
        raise DataError("this version takes no image or text column")
    if path.is_dir():
        if medium.type != "image":
            raise DataError(f"{path} is a folder; a text model's data is a CSV or Parquet file")
        frame = image_files(path, column=medium.name)
    else:
        frame = load_table(path)
        if medium.name not in frame.columns:
            message = f"column {medium.name!r} is missing; the file has {list(frame.columns)[:20]}"
            return [_whole_column(medium.name, "missing_column", message)]
        if medium.type == "image":
            frame = resolve_image_paths(frame, medium.name, path.parent)
    values = list(frame[medium.name].astype(object).where(frame[medium.name].notna(), None))
    if column.image is not None:
        problems = image_problems(values, max_pixels=column.image.max_pixels)
    else:
        assert column.text is not None
        text = column.text
        problems = text_problems(values, tokenizer=text.tokenizer, max_length=text.max_length)
    return [
        _media_finding(medium.name, rule, found, column=column)  # type: ignore[arg-type]
        for rule, found in problems.items()
    ]


def _media_finding(
    name: str, rule: Rule, found: list[tuple[int, str]], *, column: ColumnTransform
) -> Finding:
    action = "refused"
    text = column.text
    if text is not None and rule == "too_long" and text.too_long == "truncate":
        action = f"cut to its first {text.max_length - 1} tokens"
    if text is not None and rule == "empty" and text.empty == "accept":
        action = "answered as an empty text"
    examples = [{"row": row, "value": value} for row, value in found[:MAX_EXAMPLES]]
    return Finding(name, rule, len(found), examples, f"{len(found)} row(s): {rule}", action)


def validate_frame(
    frame: pd.DataFrame, schema: Schema, policy: InputPolicy | None = None
) -> list[Finding]:
    """Every violation of ``schema`` in ``frame``, columns in schema order. Nulls count in
    a column the schema calls nullable only when ``policy`` refuses missing values."""
    every_null = policy is not None and policy.missing == "reject"
    if schema.kind != "table":
        raise DataError("this model takes tensor inputs; validate an .npz file with an array 'x'")
    target = schema.target.name if schema.target else None
    expected = {c.name for c in schema.columns}
    findings = [
        _whole_column(c.name, "missing_column", f"column {c.name!r} is missing")
        for c in schema.columns
        if c.name not in frame.columns
    ]
    allowed = expected | set(schema.ignored) | ({target} if target else set())
    findings += [
        _whole_column(str(name), "extra_column", f"column {name!r} is not in the schema")
        for name in frame.columns
        if name not in allowed
    ]
    for column in schema.columns:
        if column.name in frame.columns:
            findings += _check_column(
                frame[column.name], column, schema.range_tolerance, every_null=every_null
            )
    if schema.target is not None and schema.target.name in frame.columns:
        name = schema.target.name
        findings += _check_labels(frame[name], name, schema.target.classes)
    return findings


def validate_tensor(array: np.ndarray, schema: Schema) -> list[Finding]:
    """Shape, dtype, finiteness and range of tensor instances shaped ``(N, *shape)``."""
    if schema.tensor is None:
        raise DataError("this model takes a table of named columns; validate a CSV or Parquet file")
    spec = schema.tensor
    if list(array.shape[1:]) != spec.shape:
        message = f"instances have shape {list(array.shape[1:])}, the schema says {spec.shape}"
        return [_whole_column(spec.name, "wrong_shape", message)]
    if not np.issubdtype(array.dtype, np.number):
        return [_whole_column(spec.name, "wrong_type", f"dtype {array.dtype} is not numeric")]
    flat = array.reshape(len(array), -1).astype("float64")
    findings = []
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        findings.append(
            _rows(spec.name, "non_finite", bad, values=flat.min(axis=1), message="NaN or infinity")
        )
    low, high = bounds(spec, schema.range_tolerance)
    outside = np.isfinite(flat).all(axis=1) & ((flat < low) | (flat > high)).any(axis=1)
    if outside.any():
        message = f"values outside the allowed range [{low:g}, {high:g}]"
        findings.append(
            _rows(spec.name, "out_of_range", outside, values=flat.max(axis=1), message=message)
        )
    return findings


def _whole_column(column: str, rule: Rule, message: str) -> Finding:
    return Finding(column=column, rule=rule, rows=0, examples=[], message=message)


def _rows(column: str, rule: Rule, mask: Any, *, values: Any, message: str) -> Finding:
    positions = np.flatnonzero(np.asarray(mask))
    examples = [{"row": int(i), "value": _plain(values[i])} for i in positions[:MAX_EXAMPLES]]
    return Finding(column, rule, len(positions), examples, f"{len(positions)} row(s): {message}")


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a cell value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _check_column(
    series: pd.Series, column: ColumnSchema, tolerance: float, *, every_null: bool
) -> list[Finding]:
    values = series.to_numpy(dtype=object)
    findings = []
    nulls = series.isna().to_numpy()
    if nulls.any() and (every_null or not column.nullable):
        findings.append(
            _rows(
                column.name,
                "null",
                nulls,
                values=values,
                message="empty where the schema allows none",
            )
        )
    present = ~nulls
    if column.type == "category":
        keys = np.array([category_key(v) for v in values], dtype=object)
        unseen = present & ~np.isin(keys, column.categories or [])
        if unseen.any():
            findings.append(
                _rows(
                    column.name,
                    "unseen_category",
                    unseen,
                    values=values,
                    message="category not seen in training",
                )
            )
        return findings
    if column.type == "bool":
        texts = np.array([str(v).lower() for v in values], dtype=object)
        wrong = present & ~np.isin(texts, list(_BOOL_VALUES))
        if wrong.any():
            findings.append(
                _rows(column.name, "wrong_type", wrong, values=values, message="not true/false")
            )
        return findings
    return findings + _check_numeric(series, values, present, column=column, tolerance=tolerance)


def _check_numeric(
    series: pd.Series, values: Any, present: Any, *, column: ColumnSchema, tolerance: float
) -> list[Finding]:
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    findings = []
    wrong = present & np.isnan(numbers)
    if column.type == "int":
        wrong |= present & np.isfinite(numbers) & (numbers != np.floor(numbers))
    if wrong.any():
        findings.append(
            _rows(
                column.name,
                "wrong_type",
                wrong,
                values=values,
                message=f"not a valid {column.type}",
            )
        )
    infinite = np.isinf(numbers)
    if infinite.any():
        findings.append(
            _rows(column.name, "non_finite", infinite, values=values, message="infinite value")
        )
    if column.min is not None and column.max is not None:
        low, high = bounds(column, tolerance)
        finite = np.isfinite(numbers) & ~wrong
        outside = finite & ((numbers < low) | (numbers > high))
        if outside.any():
            message = f"outside the allowed range [{low:g}, {high:g}]"
            findings.append(
                _rows(column.name, "out_of_range", outside, values=values, message=message)
            )
    return findings


def _check_labels(series: pd.Series, name: str, classes: list[int | str]) -> list[Finding]:
    values = series.to_numpy(dtype=object)
    present = ~series.isna().to_numpy()
    known = [category_key(c) for c in classes]
    keys = np.array([category_key(v) for v in values], dtype=object)
    unknown = present & ~np.isin(keys, known)
    if not unknown.any():
        return []
    return [
        _rows(
            name,
            "unseen_category",
            unknown,
            values=values,
            message="label not among the trained classes",
        )
    ]
