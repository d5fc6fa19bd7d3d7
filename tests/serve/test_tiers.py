"""Model tiers on a real server: ``dnnops models tier`` registers two trained digits models
as one version; served, each request is answered by the first tier unless its calibrated
confidence is under the threshold chosen on validation, and then by the second; the
answers equal the cascade run offline, every record names its tier, /metrics and the
report count the split, and the tiered version is rolled out as a canary like any other."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from dnnops.data.preprocess import apply_preprocessing
from dnnops.home import resolve_home
from dnnops.predlog.reader import PREDICTIONS, read_records
from dnnops.registry.loader import load_version, make_cascade
from dnnops.registry.open import open_registry
from tests.conftest import BuiltFolders, CliResult
from tests.dashboard.test_browser import CHROMIUM, _browser_or_skip
from tests.serve.conftest import start_server, two_digits_models

DIGITS = load_digits().data.astype(float)
ADMIN = {"Authorization": "Bearer a"}


@pytest.fixture
def tiered_home(
    tmp_path: Path,
    built_folders: BuiltFolders,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    home = built_folders.copy(two_digits_models, tmp_path / "p") / "home"
    monkeypatch.setenv("DNNOPS_HOME", str(home))
    made = cli("models", "tier", "digits", "--tiers", "digits@1,digits@2", "--json")
    assert made.code == 0, made.err
    plan = made.json()["tiers"]
    assert made.json()["version"] == 3
    assert [m["model"] + "@" + str(m["version"]) for m in plan["members"]] == [
        "digits@1",
        "digits@2",
    ]
    assert plan["chosen_on"]["source"].startswith("validation split of builtin:digits")
    judged = plan["chosen_on"]
    assert judged["accuracy"] >= judged["last_accuracy"] - 0.001
    assert plan["tested_on"]["rows"] > 0
    return home


def test_tier_command_refuses_what_cannot_be_tiered(
    tiered_home: Path, cli: Callable[..., CliResult]
) -> None:
    one = cli("models", "tier", "x", "--tiers", "digits@1")
    assert one.code == 2 and "at least two versions" in one.err
    nested = cli("models", "tier", "x", "--tiers", "digits@3,digits@2")
    assert nested.code == 2 and "is itself tiered" in nested.err
    loss = cli("models", "tier", "x", "--tiers", "digits@1,digits@2", "--max-accuracy-loss", "2")
    assert loss.code == 2 and "--max-accuracy-loss" in loss.err
    shown = cli("models", "show", "digits@3", "--json").json()
    assert shown["source"] == "tiered" and shown["manifest"]["tiers"] == ["digits@1", "digits@2"]
    assert {"tiers.json", "tier1.model.onnx", "calibration.json"} <= set(shown["manifest"]["files"])
    assert cli("models", "verify", "digits@3").code == 0
    exported = cli("models", "export", "digits@3")
    assert exported.code == 2 and "export each member" in exported.err
    evaluated = cli("eval", "digits@3", "--json")
    assert evaluated.code == 0 and evaluated.json()["metrics"]["accuracy"] > 0.8


def test_served_tiers_answer_as_the_cascade_and_count_the_split(tiered_home: Path) -> None:
    registry = open_registry(resolve_home(tiered_home))
    loaded = load_version(registry, registry.resolve("digits", 3))
    assert loaded.tiers is not None
    rows = pd.DataFrame(DIGITS[:400], columns=loaded.schema.feature_names)
    offline = make_cascade(loaded, threads=1)(apply_preprocessing(loaded.preprocessor, rows))
    server = start_server(
        tiered_home,
        "--model",
        "digits@1",
        env={"DNNOPS_ADMIN_TOKEN": "a", "DNNOPS_READ_TOKEN": "r"},
    )
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            started = http.post(
                "/v1/endpoints/digits/rollout", json={"version": 3, "steps": [50]}, headers=ADMIN
            )
            assert started.status_code == 201, started.text
            described = http.get("/v1/endpoints/digits", headers=ADMIN).json()
            assert described["canary_version"] == "3"
            # pinned to the tiered version: its answers are the offline cascade's
            answer = http.post(
                "/v2/models/digits/versions/3/infer",
                json={
                    "inputs": [
                        {
                            "name": "input",
                            "shape": [400, 64],
                            "datatype": "FP32",
                            "data": DIGITS[:400].ravel().tolist(),
                        }
                    ]
                },
            )
            assert answer.status_code == 200, answer.text
            outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
            expected = offline.logits.argmax(axis=1)
            assert outputs["label"] == expected.tolist()
            # routed requests: the canary's share goes to the tiered version
            versions = {
                http.post(
                    "/v1/models/digits:predict",
                    json={"instances": [DIGITS[i].tolist()]},
                    headers={"x-routing-key": f"user-{i}"},
                ).headers["x-model-version"]
                for i in range(40)
            }
            assert versions == {"1", "3"}
            metrics = http.get("/metrics").text
            time.sleep(0.2)
            report = http.get(
                "/v1/monitor/digits", params={"since": "1h"}, headers={"Authorization": "Bearer r"}
            )
        card = _tier_card(server.url)
    finally:
        server.stop()
    tiers = offline.tiers
    assert 0 < tiers.sum() < len(tiers), "the test needs rows on both tiers"
    counted = _tier_counts(metrics)
    assert counted["digits@1"] >= int((tiers == 0).sum())
    assert counted["digits@2"] >= int((tiers == 1).sum())
    assert "dnnops_tier_cpu_seconds_total" in metrics
    records = list(read_records(tiered_home / "logs" / PREDICTIONS, PREDICTIONS))
    tiered = [r for r in records if r.get("version") == "3"]
    assert all(r["tier"] in (0, 1) for r in tiered) and len(tiered) >= 400
    assert not any("tier" in r for r in records if r.get("version") == "1")
    assert report.status_code == 200, report.text
    [section] = [v for v in report.json()["versions"] if v["slis"]["version"] == "3"]
    split = section["tiers"]
    assert [t["member"] for t in split["tiers"]] == ["digits@1", "digits@2"]
    assert sum(t["predictions"] for t in split["tiers"]) == len(tiered)
    assert split["escalation_rate"] == pytest.approx(
        sum(1 for r in tiered if r["tier"] == 1) / len(tiered)
    )
    # the dashboard's executive view: the canary's tier split
    assert "tier split v3" in card and "digits@1" in card and "escalated" in card, card


def _tier_card(url: str) -> str:
    """The executive view's cards as Chromium renders them (a read token in the page)."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.goto(f"{url}/dashboard?view=executive#token=r")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        text = str(page.text_content("#exec-cards"))
        browser.close()
    return text


def _tier_counts(metrics: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("dnnops_tier_predictions_total{"):
            tier = line.split('tier="')[1].split('"')[0]
            counts[tier] = counts.get(tier, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_tiers_of_a_users_csv_with_string_labels_gaps_and_categories(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "color": rng.choice(["r", "g"], n)}
    )
    score = frame.x1 + 0.5 * frame.x2 + (frame.color == "r")
    frame["label"] = np.where(score > 0.8, "high", np.where(score < -0.3, "low", "mid"))
    frame.loc[rng.choice(n, 40), "x2"] = np.nan
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    monkeypatch.setenv("DNNOPS_HOME", str(tmp_path / "home"))
    for name, hidden in (("s", [4]), ("l", [64])):
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"name: {name}\ndata: {{source: '{data}', target: label}}\n"
            f"model: {{arch: mlp, params: {{hidden: {hidden}}}}}\ntrain: {{epochs: 3, seed: 1}}\n"
        )
        assert cli("train", "-c", str(config), "--quiet").code == 0
    made = cli("models", "tier", "t", "--tiers", "s@1,l@1", "--json")
    assert made.code == 0, made.err
    assert made.json()["tiers"]["chosen_on"]["source"] == f"validation split of {data}"
    new = tmp_path / "new.csv"
    new.write_text("x1,x2,color\n0.1,,purple\n2,1,r\n")  # a gap and an unseen category
    out = tmp_path / "out.csv"
    assert cli("predict", str(new), "--model", "t@1", "--out", str(out)).code == 0
    assert set(pd.read_csv(out)["prediction"]) <= {"high", "low", "mid"}
    data.unlink()  # the training file gone: the command names the way out
    gone = cli("models", "tier", "t", "--tiers", "s@1,l@1")
    assert gone.code == 2 and "pass --data FILE" in gone.err
