"""A regressor retrains too: the market moved (every price up by 60), the labeled traffic a
server captured fires the MAE trigger, and the challenger's lower MAE on the newest labels
earns it a canary. It is warm-started from the champion's weights (``retrain.warm_start``),
and says so in its outcome and its lineage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import CliResult
from tests.serve.conftest import start_server
from tests.userdata import prices_frame, project_file, write_csv


def test_a_regressor_retrains_on_labeled_traffic_whose_prices_moved(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = write_csv(prices_frame(rows=600, seed=0), tmp_path / "prices.csv")
    config = project_file(
        tmp_path / "dnnops.yaml",
        "prices",
        source,
        "price",
        task="regression",
        train={"epochs": 60, "lr": 0.01, "seed": 0},
        retrain={
            "drift_share": None,
            "mae_above": 30,
            "min_new_labels": 200,
            "approval": True,
            "warm_start": True,
        },
    )
    assert cli("train", "-c", str(config), "--quiet", "--json").code == 0
    live = prices_frame(rows=400, seed=5)
    live["price"] += 60.0
    server = start_server(home, "--model", "prices@production")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for start in range(0, len(live), 50):
                part = live.iloc[start : start + 50]
                features = part.drop(columns=["price"])
                instances = features.astype(object).where(features.notna(), None)
                answered = http.post(
                    "/v1/models/prices:predict", json={"instances": instances.to_dict("records")}
                )
                assert answered.status_code == 200, answered.text
                labels = [
                    {"prediction_id": pid, "label": float(price)}
                    for pid, price in zip(
                        answered.json()["prediction_ids"], part["price"], strict=True
                    )
                ]
                assert http.post("/v1/feedback", json={"labels": labels}).status_code == 200
    finally:
        server.stop()

    result = cli("retrain", "-c", str(config), "--json")
    assert result.code == 0, result.err
    outcome = result.json()
    assert any(t.startswith("MAE") for t in outcome["decision"]["fired"]), outcome["decision"]
    assert outcome["observed"]["mae"] > 30 and outcome["observed"]["accuracy"] is None
    assert outcome["rows"]["captured"] == len(live)
    assert outcome["challenger"] == 2 and outcome["accuracy"] == {}
    assert outcome["started_from"] == "prices@1"
    lineage = cli("models", "show", "prices@2")
    assert "prices@1 (sha256" in lineage.out
    assert outcome["mae"]["challenger"] < outcome["mae"]["champion"] - 10, outcome["mae"]
    assert "beats the champion (MAE" in outcome["outcome"]
    held = cli("rollout", "status", "prices", "--json").json()["rollout"]
    assert (held["candidate"], held["status"]) == (2, "awaiting_approval")
