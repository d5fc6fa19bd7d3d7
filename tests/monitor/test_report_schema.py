"""The report's JSON has a schema on file: a change to the report's types changes it, and
reports of real traffic (tests/monitor/test_report.py, tests/test_regression.py) follow it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from dnnops.monitor.judgements.report_types import SCHEMA_FILE, report_schema


def check_report(report: dict[str, Any]) -> None:
    """Fail when ``report`` (as JSON) does not follow the schema file."""
    jsonschema.validate(report, json.loads(SCHEMA_FILE.read_text()))


def test_the_schema_file_matches_the_report_types() -> None:
    written = json.loads(SCHEMA_FILE.read_text())
    assert written == report_schema(), (
        "the report's types changed: if on purpose, run "
        "`python -m dnnops.monitor.judgements.report_types` and commit report.schema.json"
    )


def test_a_report_that_breaks_the_schema_is_caught() -> None:
    with pytest.raises(jsonschema.ValidationError, match="segments"):
        check_report(
            {"generated_at": 1.0, "window_s": 60.0, "window_start": 0.0, "records": 0,
             "versions": [], "drift": None}
        )  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        check_report(
            {"generated_at": 1.0, "window_s": 60.0, "window_start": 0.0, "records": "many",
             "segments": {"digested": 0, "from_disk": 0}, "versions": [], "drift": None}
        )  # fmt: skip
