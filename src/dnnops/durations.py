"""Durations as written in dnnops.yaml: ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"3d"``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError naming the accepted forms."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, "
            "one of ms, s, m, h, d (for example '500ms', '30s', '1h')"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the largest unit that divides it."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"
