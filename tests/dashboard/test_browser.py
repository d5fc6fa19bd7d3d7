"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a real
server with real traffic: each view loads without console errors, its charts hold data
points, the tracer finds a prediction; a screenshot of each view is kept as an artifact."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits

from dnnops.quickstart.camera import new_camera
from tests.conftest import REPO, BuiltFolders
from tests.serve.conftest import Server, one_digits_model, start_server

CHROMIUM = Path(os.environ.get("DNNOPS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"


def _browser_or_skip() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"Chromium is not at {CHROMIUM} (apt-get install chromium, or DNNOPS_CHROMIUM)"
    elif not _has_playwright():
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is None:
        return
    if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
        pytest.fail(f"browser tests are required here (DNNOPS_REQUIRE_ALL_TESTS=1): {missing}")
    pytest.skip(missing)


def _has_playwright() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders
) -> Iterator[tuple[Server, list[str]]]:
    """A served digits model that answered clean then new-camera digits, with labels."""
    _browser_or_skip()
    folder = built_folders.copy(one_digits_model, tmp_path_factory.mktemp("dashboard") / "p")
    home = folder / "home"
    config = folder / "explain.yaml"  # a tenth of the live predictions explained
    config.write_text(
        "name: digits\ndata: {source: 'builtin:digits'}\n"
        "monitor: {explain: {sample: 0.1, every: 1s}, kpis: [{name: purchase}]}\n"
    )
    running = start_server(home, "-c", str(config))
    digits = load_digits()
    ids: list[str] = []
    with httpx.Client(base_url=running.url, timeout=30) as http:
        for rows in (digits.data[:300], new_camera(digits.data[300:600], seed=1)):
            for start in range(0, len(rows), 4):
                chunk = rows[start : start + 4]
                ids.extend(_infer(http, chunk))
        labels = [
            {"prediction_id": i, "label": int(y)} for i, y in zip(ids, digits.target, strict=False)
        ]
        assert http.post("/v1/feedback", json={"labels": labels}).status_code == 200
        bought = [  # a customer bought after every fourth answer
            {"prediction_id": i, "name": "purchase", "value": int(n % 4 == 0)}
            for n, i in enumerate(ids)
        ]
        assert http.post("/v1/outcomes", json={"outcomes": bought}).json()["accepted"] == 600
        deadline = time.monotonic() + 60
        while http.get("/v1/monitor/digits?since=1h").json()["versions"][0]["explanations"] is None:
            assert time.monotonic() < deadline, "no explanation was stored"
            time.sleep(0.5)
    yield running, ids
    running.stop()


def _infer(http: httpx.Client, rows: np.ndarray) -> list[str]:
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    response = http.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-prediction-id"].split(",")


@pytest.fixture(scope="module")
def page(server: tuple[Server, list[str]]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        tab = browser.new_page(viewport={"width": 1300, "height": 1000})
        tab.console_errors = []
        tab.on(
            "console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None
        )
        tab.on("pageerror", lambda error: tab.console_errors.append(str(error)))
        yield tab
        browser.close()


def _open(page: Any, url: str, view: str) -> None:
    page.console_errors.clear()
    page.goto(f"{url}/dashboard?view={view}")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{view}.png"), full_page=True)


def _points(page: Any, chart: str, series: int = 1) -> int:
    """Points of ``series`` in ``chart``; a chart with one bucket of data shows its values
    as text instead (a lone dot says nothing), counted here the same way."""
    if not page.evaluate(f"'{chart}' in charts"):
        shown = page.locator(f"#{chart} strong").count()
        assert "one bucket so far" in (page.text_content(f"#{chart}") or "") or not shown
        return 1 if shown >= series else 0
    return int(
        page.evaluate(f"charts['{chart}'].plot.data[{series}].filter((v) => v !== null).length")
    )


def test_the_executive_view_shows_health_traffic_accuracy_and_drift(
    server: tuple[Server, list[str]], page: Any
) -> None:
    running, _ = server
    _open(page, running.url, "executive")
    assert page.text_content("#exec-cards .value") not in ("", "\u2013")  # an en dash: no data
    for chart in ("chart-traffic", "chart-accuracy", "chart-drift", "chart-cost"):
        assert _points(page, chart) > 0, chart
    assert _points(page, "chart-accuracy", series=2) > 0  # v1 estimated before labels
    assert "v1" in page.text_content("#exec-versions")
    assert "alias" in page.text_content("#exec-decisions")
    kpis = page.text_content("#exec-kpis") or ""
    assert "purchase" in kpis and "25.0%" in kpis and "higher is better" in kpis, kpis
    # accuracy before labels: the calibrated estimate, a percentage with its interval
    assert re.search(r"estimated accuracy\d+\.\d%", page.text_content("#exec-cards"))
    assert page.console_errors == []


def test_the_oncall_view_shows_latency_success_and_rollout_state(
    server: tuple[Server, list[str]], page: Any
) -> None:
    running, _ = server
    _open(page, running.url, "oncall")
    page.goto(f"{running.url}/dashboard?view=oncall&since=2h")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.input_value("#window") == "2h"
    assert "no replay yet: dnnops replay" in (page.text_content("#oncall-replays") or "")
    for series in (1, 2, 3):
        assert _points(page, "chart-latency", series) > 0
    assert _points(page, "chart-success") > 0
    assert _points(page, "chart-success", series=2) > 0  # the 4xx share, 0 here
    assert "stable" in page.text_content("#oncall-rollout")
    assert page.console_errors == []


def test_the_debug_view_shows_distributions_and_the_tracer_finds_a_prediction(
    server: tuple[Server, list[str]], page: Any
) -> None:
    running, ids = server
    _open(page, running.url, "debug")
    assert page.locator("#debug-features figure").count() > 0
    assert page.locator("#debug-features rect.bar").count() > 0
    assert page.locator("#debug-confusion td").count() >= 100  # 10 x 10 plus row labels
    assert page.locator("#debug-explanations rect.bar").count() > 0  # validation and live
    assert "explained" in page.text_content("#debug-explanations")
    page.fill("#trace-id", ids[5])
    page.click("#tracer button")
    page.wait_for_selector("#trace-inputs", timeout=10_000)
    assert ids[5] in page.text_content("#trace-result")
    assert page.console_errors == []
    page.fill("#trace-id", "no-such-id")
    page.click("#tracer button")
    page.wait_for_selector("#trace-result .bad", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-tracer.png"), full_page=True)
    assert "no prediction 'no-such-id'" in page.text_content("#trace-result")


def test_the_server_refuses_unknown_dashboard_files(server: tuple[Server, list[str]]) -> None:
    running, _ = server
    assert httpx.get(f"{running.url}/dashboard/static/app.js").status_code == 200
    for name in ("..%2Fdata.py", "index.html", "nope.js"):
        assert httpx.get(f"{running.url}/dashboard/static/{name}").status_code == 404
    assert httpx.get(f"{running.url}/v1/predictions/bad%20id").status_code == 400
    assert httpx.get(f"{running.url}/v1/dashboard/nope").status_code == 404
