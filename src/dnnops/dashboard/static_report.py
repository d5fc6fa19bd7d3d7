"""The dashboard as one self-contained HTML file (``dnnops monitor report --html``): the
page, its styles, scripts and data inlined, so it opens offline and can be mailed."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import orjson

from dnnops.config import MonitorConfig, SloConfig
from dnnops.dashboard.data import dashboard_data
from dnnops.dashboard.document import DashboardDocument
from dnnops.files import SHARED_FILE, atomic_write
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.report import build_report
from dnnops.registry.versions import ModelRegistry


def _static(name: str) -> str:
    return resources.files("dnnops.dashboard").joinpath("static", name).read_text("utf-8")


def render_static(documents: Mapping[str, DashboardDocument]) -> str:
    """The page with ``documents`` (endpoint -> dashboard data) embedded."""
    page = _static("index.html")
    for name in ("uPlot.min.css", "style.css"):
        tag = f'<link rel="stylesheet" href="/dashboard/static/{name}">'
        page = page.replace(tag, f"<style>\n{_static(name)}\n</style>")
    shown = {name: document.to_dict() for name, document in documents.items()}
    data = orjson.dumps({"endpoints": shown}, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    data = data.replace("</", "<\\/")  # the data can never close its <script> element
    scripts = [f"window.DNNOPS_DATA = {data};"]
    for name in ("uPlot.iife.min.js", "app.js"):
        page = page.replace(f'<script src="/dashboard/static/{name}"></script>', "")
        scripts.append(_static(name))
    inline = "".join(f"<script>\n{s}\n</script>\n" for s in scripts)
    return page.replace("</body>", inline + "</body>")


def write_static_report(
    path: Path,
    registry: ModelRegistry,
    logs_dir: Path,
    *,
    endpoints: list[str],
    window_s: float,
    monitor: MonitorConfig,
    slo: SloConfig,
    report: Report | None = None,
) -> Path:
    """The page for ``endpoints``, all from one report of the window (``report``, or one
    built here): each endpoint's section used to build the whole report again."""
    if report is None:
        report = build_report(registry, logs_dir, window_s, monitor=monitor, slo=slo)
    documents = {
        name: dashboard_data(
            registry,
            logs_dir,
            name,
            window_s=window_s,
            monitor=monitor,
            slo=slo,
            report=report,
        )
        for name in endpoints
    }
    atomic_write(path, render_static(documents).encode(), mode=SHARED_FILE)
    return path
