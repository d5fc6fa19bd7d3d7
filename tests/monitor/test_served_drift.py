"""Monitoring of a served tabular model from the logs its real server wrote: drift planted
on three features is reported on those three and no others; a latency SLO that is breached
pages and one that holds fires nothing; the server's own evaluation exports the gauges."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
from sklearn.datasets import load_wine

from tests.conftest import CliResult, write_project
from tests.serve.conftest import start_server

PLANTED = ["alcohol", "magnesium", "proline"]


def test_planted_drift_and_latency_slos_on_a_served_tabular_model(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    config = write_project(
        tmp_path,
        name="wine",
        data={"source": "builtin:wine", "preprocessing": {"numeric": "standardize"}},
        model={"arch": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
        train={"epochs": 5, "batch_size": 32, "lr": 0.01, "seed": 1},
        monitor={"evaluate_every": "1s"},
        slo={
            "objectives": [
                {"name": "breached", "kind": "latency", "target": 0.99, "threshold": "0.05ms"},
                {"name": "holds", "kind": "latency", "target": 0.99, "threshold": "10s"},
            ],
            "min_events": 20,  # 45 requests of four rows: a latency objective counts requests
        },
    )
    assert cli("train", "-c", str(config), "--quiet", "--json").code == 0
    frame: pd.DataFrame = load_wine(as_frame=True).frame.drop(columns=["target"])
    for column in PLANTED:  # every row once, three features moved by two standard deviations
        frame[column] = frame[column] + 2 * frame[column].std()
    server = start_server(home, "-c", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for start in range(0, len(frame), 4):
                rows = frame.iloc[start : start + 4].to_dict(orient="records")
                answer = http.post("/v1/models/wine:predict", json={"instances": rows})
                assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 30
            while "dnnops_drift_share{" not in (metrics := http.get("/metrics").text):
                assert time.monotonic() < deadline, "the server never evaluated its monitoring"
                time.sleep(0.3)
    finally:
        server.stop()
    assert 'dnnops_drift_score{endpoint="wine",feature="proline"' in metrics
    assert "dnnops_slo_error_budget_remaining{" in metrics
    report = cli("monitor", "report", "--since", "1h", "-c", str(config), "--json").json()
    [version] = report["versions"]
    drifted = sorted(f["feature"] for f in version["drift"]["features"] if f["drifted"])
    assert drifted == sorted(PLANTED)
    slis = version["slis"]
    assert 0 < slis["model_latency_p50_ms"] <= slis["latency_p50_ms"]
    status = {row["name"]: row for row in cli("slo", "status", "-c", str(config), "--json").json()}
    assert "page 14.4x" in status["breached"]["burning"]
    assert status["breached"]["met"] is False
    assert status["holds"]["burning"] == []
    assert status["holds"]["met"] is True
