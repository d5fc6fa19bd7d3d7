"""Which column of a table is free text: what ``dnnops init --data`` and ``data profile``
call a text column, and what the identifier rule must not drop as "a distinct string on
every row"."""

from __future__ import annotations

import pandas as pd

MIN_ROWS = 20
MIN_MEDIAN_WORDS = 4
"""Category labels ("Dream", "credit card") have one to three words; sentences more."""
MIN_DISTINCT_SHARE = 0.5
"""A category repeats; texts people write rarely do."""


def text_reason(column: pd.Series) -> str | None:
    """Why ``column`` holds free text (long strings with many distinct values), or None."""
    values = column.dropna()
    if len(values) < MIN_ROWS or pd.api.types.is_numeric_dtype(values):
        return None
    if pd.api.types.is_bool_dtype(values):
        return None
    strings = values.astype(str)
    words = float(strings.str.count(r"\S+").median())
    distinct = values.nunique() / len(values)
    if words >= MIN_MEDIAN_WORDS and distinct >= MIN_DISTINCT_SHARE:
        return f"free text: a median of {words:g} words, {distinct:.0%} of the values distinct"
    return None


def text_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Every free-text column of ``frame`` with the reason, longest texts first."""
    found = {str(name): text_reason(frame[name]) for name in frame.columns}
    reasons = {name: reason for name, reason in found.items() if reason is not None}
    length = {name: float(frame[name].dropna().astype(str).str.len().median()) for name in reasons}
    return {name: reasons[name] for name in sorted(reasons, key=lambda n: -length[n])}
