"""``dnnops export``: the Prometheus rules pass ``promtool check rules`` and, fed a burst of
5xx answers, fire the page alert in ``promtool test rules``; every Grafana query parses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import CliResult, write_project

OBJECTIVES = {
    "objectives": [
        {"name": "latency", "kind": "latency", "target": 0.99, "threshold": "100ms"},
        {"name": "availability", "kind": "success_rate", "target": 0.999},
        {"name": "accuracy", "kind": "accuracy", "target": 0.9},
    ]
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("promtool is required here (Debian package prometheus)")
        pytest.skip("promtool not installed; apt-get install prometheus to run this check")
    return found


def test_prometheus_rules_pass_promtool_and_fire_on_errors(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    tool = promtool()
    config = write_project(tmp_path, slo=OBJECTIVES)
    result = cli("export", "prometheus-rules", "-c", str(config))
    assert result.code == 0, result.err
    assert "Not here: accuracy" in result.out
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(result.out)
    checked = subprocess.run(
        [tool, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = yaml.safe_load(result.out)
    alerts = {
        (r["alert"], r["labels"]["objective"], r["labels"]["factor"]): r
        for r in [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
        if "objective" in r.get("labels", {})
    }
    assert {o for _, o, _ in alerts} == {"latency", "availability"}
    runbooks = {
        r["alert"]: r["annotations"]["runbook_url"]
        for r in [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    }
    assert all(url.startswith("docs/runbooks/") for url in runbooks.values()), runbooks
    assert runbooks["DnnopsQueueNearLimit"] == "docs/runbooks/queue-saturation.md"
    for url in runbooks.values():  # every page a rule points to ships with the docs
        assert (Path(__file__).parents[2] / url).is_file(), url
    pages = [alerts[("DnnopsErrorBudgetBurnPage", "availability", f)] for f in ("14.4", "6.0")]
    series = 'dnnops_requests_total{endpoint="digits",model="digits",version="1",status="%s"}'
    rows = 'dnnops_instances_total{endpoint="digits",model="digits",version="1"}'
    unit_test = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series % "200", "values": "0+90x120"},
                    {"series": rows, "values": "0+90x120"},
                    {"series": series % "500", "values": "0+10x120"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "90m",
                        "alertname": "DnnopsErrorBudgetBurnPage",
                        "exp_alerts": [
                            {
                                "exp_labels": {**page["labels"], "version": "1"},  # per version
                                "exp_annotations": page["annotations"],
                            }
                            for page in pages
                        ],
                    }
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": series % "200", "values": "0+100x120"},
                    {"series": rows, "values": "0+100x120"},
                ],
                "alert_rule_test": [
                    {"eval_time": "90m", "alertname": "DnnopsErrorBudgetBurnPage", "exp_alerts": []}
                ],
            },
            {  # half the requests fail, but 60 an hour are too few to page on (min_events)
                "interval": "1m",
                "input_series": [
                    {"series": series % "200", "values": "0+0.5x120"},
                    {"series": rows, "values": "0+0.5x120"},
                    {"series": series % "500", "values": "0+0.5x120"},
                ],
                "alert_rule_test": [
                    {"eval_time": "90m", "alertname": "DnnopsErrorBudgetBurnPage", "exp_alerts": []}
                ],
            },
        ],
    }
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(unit_test, sort_keys=False))
    tested = subprocess.run([tool, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_grafana_query_is_valid_promql(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    tool = promtool()
    config = write_project(tmp_path, slo=OBJECTIVES)
    result = cli("export", "grafana", "-c", str(config))
    assert result.code == 0, result.err
    dashboard = json.loads(result.out)
    assert dashboard["title"] == "dnnops: digits"
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(expressions) >= 8
    as_rules = {
        "groups": [
            {
                "name": "grafana-queries",
                "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(expressions)],
            }
        ]
    }
    rules_file = tmp_path / "queries.yml"
    rules_file.write_text(yaml.safe_dump(as_rules))
    checked = subprocess.run(
        [tool, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alertmanager_config_passes_amtool_and_names_its_receivers(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bare = write_project(tmp_path, name="toy", data={"source": "builtin:wine"})
    refused = cli("export", "alertmanager", "-c", str(bare))
    assert refused.code == 2 and "set monitor.webhook_url" in refused.err
    hooks = {"page": "http://127.0.0.1:1/page", "ticket": "http://127.0.0.1:1/ticket"}
    config = write_project(
        tmp_path, name="toy", data={"source": "builtin:wine"}, monitor={"webhook_url": hooks}
    )
    out = tmp_path / "alertmanager.yml"
    assert cli("export", "alertmanager", "-c", str(config), "--out", str(out)).code == 0
    written = yaml.safe_load(out.read_text())
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in written["receivers"]}
    assert urls == {"dnnops-page": hooks["page"], "dnnops-ticket": hooks["ticket"]}
    [inhibit] = written["inhibit_rules"]
    assert inhibit["source_matchers"][-1] == 'severity="page"'
    assert inhibit["target_matchers"][-1] == 'severity="ticket"'
    amtool = shutil.which("amtool")
    if amtool is None:
        if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("amtool is required here (Debian package prometheus-alertmanager)")
        pytest.skip("amtool not installed; apt-get install prometheus-alertmanager")
    checked = subprocess.run([amtool, "check-config", str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
