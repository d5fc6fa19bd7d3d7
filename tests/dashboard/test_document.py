"""The page's script reads only what the typed dashboard document has: a field renamed in
``dashboard/document.py`` (or a metric renamed in the timeline) fails here, not in a
browser later."""

from __future__ import annotations

import re
from dataclasses import fields
from importlib import resources

from dnnops.dashboard.data import health_score
from dnnops.dashboard.document import (
    DashboardDocument,
    DashboardSeries,
    FeatureDistribution,
    Health,
    VersionRow,
)
from dnnops.monitor.segments.timeseries import Bucket
from dnnops.registry.alerts import StoredAlert

SCRIPT = resources.files("dnnops.dashboard").joinpath("static/app.js").read_text()


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _read(pattern: str) -> set[str]:
    found = set(re.findall(pattern, SCRIPT))
    assert found, f"the script no longer matches {pattern!r}: update this test"
    return found


def test_every_field_the_script_reads_is_in_the_document() -> None:
    assert _read(r"\bdoc\.(\w+)") <= _names(DashboardDocument)
    assert _read(r"\bdoc\.series\.(\w+)") <= _names(DashboardSeries)
    assert _read(r"\bdoc\.health\.(\w+)") <= _names(Health)


def test_every_metric_the_script_plots_is_in_the_timeline() -> None:
    metrics = set(Bucket().point())
    plotted = _read(r'byVersion\(doc, "(\w+)"') | _read(r"\be\.(\w+)")
    plotted |= _read(r"doc\.series\.endpoint\.(\w+)")
    assert plotted <= metrics


def _read_in(opening: str, variable: str) -> set[str]:
    """The attributes of ``variable`` read in the statement that starts with ``opening``."""
    at = SCRIPT.index(opening)
    statement = SCRIPT[at : SCRIPT.index(";\n", at)]
    found = set(re.findall(rf"\b{variable}\.(\w+)", statement))
    assert found, f"{opening!r} reads nothing of {variable}: update this test"
    return found


def test_the_rows_the_script_renders_have_the_fields_it_reads() -> None:
    assert _read_in("doc.features.map((f) =>", "f") <= _names(FeatureDistribution)
    assert _read_in("doc.versions.map((v) =>", "v") <= _names(VersionRow)
    assert _read_in("active.map((a) =>", "a") <= _names(StoredAlert)


def test_health_without_a_current_version_has_no_score() -> None:
    assert health_score([], current=None) == Health(None)
