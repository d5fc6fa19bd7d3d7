"""Business outcomes through ``dnnops outcomes FILE``: refused with a named error when the
file or a name is wrong, counted when a prediction is unknown, then joined with their
predictions in the report (a rate with Wilson's interval, a mean with a normal one, and
``missing: zero`` counting silent predictions as 0) and judged by a ``kpi`` objective."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from dnnops.config import load_config
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.report import build_report
from dnnops.registry.open import open_registry
from tests.conftest import CliResult, write_project

PREDICTIONS = 400


def _predictions(logs_dir: Path, now: float) -> list[str]:
    """400 answered predictions of toy@1 over the last 20 minutes."""
    ids = [f"p{i}" for i in range(PREDICTIONS)]
    records = [
        orjson.dumps(
            {
                "ts": now - 1200 + 3 * i,
                "status": 200,
                "endpoint": "toy",
                "model": "toy",
                "version": "1",
                "id": pid,
                "output": 1,
                "probabilities": [0.2, 0.8],
            }
        )
        for i, pid in enumerate(ids)
    ]
    logger = PredictionLogger(logs_dir).start()
    logger.predictions.append(records)
    logger.close()
    return ids


def test_outcomes_become_kpis_and_a_kpi_objective(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    config = write_project(
        tmp_path,
        name="toy",
        data={"source": "builtin:wine"},
        monitor={
            "kpis": [
                {"name": "purchase"},
                {"name": "refund", "better": "lower"},
                {"name": "click", "missing": "zero"},
            ]
        },
        slo={"objectives": [{"name": "buyers", "kind": "kpi", "kpi": "purchase", "target": 0.5}]},
    )
    now = time.time()
    ids = _predictions(resolve_home(home).logs_dir, now)
    rows = ["prediction_id,name,value"]
    rows += [f"{pid},purchase,{int(i % 10 < 3)}" for i, pid in enumerate(ids)]  # 30% buy
    rows += [f"{pid},refund,{(i % 5) * 2.5}" for i, pid in enumerate(ids[:100])]  # mean 5
    rows += [f"{pid},click,true" for pid in ids[:40]]  # 40 clicks of 400 answers
    rows += ["nobody,purchase,1"]
    file = tmp_path / "outcomes.csv"
    file.write_text("\n".join(rows) + "\n")

    sent = cli("outcomes", str(file), "-c", str(config), "--json")
    assert sent.code == 1, sent.err  # one refused: its prediction is unknown
    assert sent.json()["accepted"] == 540 and sent.json()["refused"] == {"unknown_prediction_id": 1}
    typo = tmp_path / "typo.csv"
    typo.write_text("prediction_id,name,value\np1,purchse,1\n")
    refused = cli("outcomes", str(typo), "-c", str(config))
    assert (
        refused.code == 2
        and "'purchse' is not a KPI" in refused.err
        and "typo.csv:2" in refused.err
    )
    typo.write_text("prediction_id,name,value\np1,purchase,lots\n")
    assert "value 'lots' is not a number" in cli("outcomes", str(typo), "-c", str(config)).err

    project = load_config(config)
    resolved = resolve_home(home)
    report = build_report(
        open_registry(resolved), resolved.logs_dir, 3600.0,
        monitor=project.monitor, slo=project.slo, now=now,
    )  # fmt: skip
    [section] = report.versions
    kpis = {k.name: k for k in section.kpis}
    purchase, refund, click = kpis["purchase"], kpis["refund"], kpis["click"]
    assert (purchase.kind, purchase.outcomes, purchase.events) == ("rate", 400, 400)
    assert purchase.value == pytest.approx(0.3)
    assert purchase.low == pytest.approx(0.2568, abs=1e-3)  # Wilson, 120 of 400
    assert purchase.high == pytest.approx(0.3471, abs=1e-3)
    assert (refund.kind, refund.outcomes, refund.better) == ("mean", 100, "lower")
    assert refund.value == pytest.approx(5.0)
    assert refund.low is not None and refund.low < 5.0 < (refund.high or 0)
    assert (click.outcomes, click.events) == (40, 400)  # the silent answers count as 0
    assert click.value == pytest.approx(0.1)
    [buyers] = section.slo
    assert (buyers.kind, buyers.events) == ("kpi", 400)
    assert buyers.current == pytest.approx(0.3) and buyers.met is False
