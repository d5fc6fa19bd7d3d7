"""A version's model card (Mitchell et al. 2019), generated from what the registry holds:
the data it learned from, its metrics beside the baselines, its gates, fairness across
groups, calibration, and what its owners wrote (intended use, limitations). As JSON for
tools, as Markdown for people; nothing in it is typed by hand but the owners' words."""

from __future__ import annotations

import json
from typing import Any

from dnnops.registry.loader import CALIBRATION
from dnnops.registry.retirement import model_info
from dnnops.registry.versions import ModelRegistry, VersionRecord

FORMAT = 1


def model_card(registry: ModelRegistry, record: VersionRecord) -> dict[str, Any]:
    """The card of ``record``, every part from its manifest and files (integrity-checked)."""
    manifest = registry.manifest(record)

    def stored(name: str) -> dict[str, Any] | None:
        if not manifest.has(name):
            return None
        found: dict[str, Any] = json.loads(registry.file(record, manifest, name))
        return found

    evaluation = stored("evaluation.json") or {}
    schema = stored("schema.json") or {}
    calibration = stored(CALIBRATION)
    owners = model_info(registry, record.model)
    columns = schema.get("columns", [])
    target = schema.get("target") or {}
    return {
        "format": FORMAT,
        "model": record.model,
        "version": record.version,
        "created_at": record.created_at,
        "status": record.status,
        "aliases": record.aliases,
        "owners": owners["owners"],
        "description": owners["description"],
        "intended_use": owners["intended_use"],
        "limitations": owners["limitations"],
        "lineage": {
            "source": record.source,
            "run_id": record.run_id,
            "parent_version": record.parent_version,
        },
        "data": {
            "dataset_sha256": record.dataset_sha256,
            "features": [c.get("name") for c in columns],
            "sensitive": [c.get("name") for c in columns if c.get("sensitive")],
            "target": target.get("name"),
            "classes": manifest.classes,
            "test_rows": evaluation.get("samples"),
        },
        "model_details": {
            "task": manifest.task,
            "architecture": (manifest.get("spec") or {}).get("arch"),
            "input": manifest.get("input"),
        },
        "metrics": dict(record.metrics),
        "baselines": evaluation.get("baselines", {}),
        "gates": {
            "passed": record.gates_passed,
            "checks": manifest.get("gates") or [],
        },
        "fairness": {
            "group_accuracy": evaluation.get("group_accuracy") if evaluation else None,
            "false_positive_rate_per_class": evaluation.get("fpr_per_class")
            if evaluation
            else None,
            "false_negative_rate_per_class": evaluation.get("fnr_per_class")
            if evaluation
            else None,
        },
        "calibration": (
            {
                "method": calibration["method"],
                "brier_before": calibration["brier_before"],
                "brier_after": calibration["brier_after"],
                "held_out_error": calibration.get("held_out_error"),
                "rows": calibration["rows"],
            }
            if calibration
            else None
        ),
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card for people: one section per part, ``none recorded`` where the registry
    holds nothing (an imported model has no training data to describe)."""
    lines = [f"# Model card: {card['model']} v{card['version']}", ""]
    lines += [
        f"- **Created:** {card['created_at']} ({card['lineage']['source']}"
        + (f", run {card['lineage']['run_id']}" if card["lineage"]["run_id"] else "")
        + ")",
        f"- **Status:** {card['status']}; aliases: {', '.join(card['aliases']) or 'none'}",
        f"- **Owners:** {', '.join(card['owners']) or 'none recorded'}",
        "",
    ]
    for title, key in (
        ("Description", "description"),
        ("Intended use", "intended_use"),
        ("Limitations", "limitations"),
    ):
        lines += [f"## {title}", "", card[key] or "none recorded", ""]
    data, details = card["data"], card["model_details"]
    lines += [
        "## Data",
        "",
        f"- Dataset: `{data['dataset_sha256'] or 'not recorded'}`",
        f"- Target: {data['target'] or 'none'}; classes: {_listed(data['classes'])}",
        f"- Features ({len(data['features'])}): {_listed(data['features'])}",
        f"- Sensitive: {_listed(data['sensitive'])}",
        f"- Test rows: {data['test_rows'] if data['test_rows'] is not None else 'none'}",
        "",
        "## Model",
        "",
        f"- Task: {details['task']}; architecture: {details['architecture'] or 'imported'}",
        "",
        "## Metrics (test split)",
        "",
    ]
    lines += _metrics_table(card["metrics"], card["baselines"])
    gates = card["gates"]
    lines += ["", "## Gates", ""]
    verdict = {True: "passed", False: "FAILED", None: "none set"}[gates["passed"]]
    lines.append(f"Verdict: {verdict}")
    for gate in gates["checks"]:
        lines.append(f"- {json.dumps(gate, sort_keys=True)}")
    fairness = card["fairness"]
    lines += ["", "## Fairness", ""]
    groups = fairness["group_accuracy"]
    if groups:
        lines += ["| group | accuracy |", "| --- | --- |"]
        lines += [f"| {g} | {a:.4f} |" for g, a in sorted(groups.items())]
    else:
        lines.append("No groups recorded (data.group names the column to compare across).")
    calibration = card["calibration"]
    lines += ["", "## Calibration", ""]
    if calibration:
        lines.append(
            f"{calibration['method']} on {calibration['rows']} held-out rows: Brier "
            f"{calibration['brier_before']:.4f} before, {calibration['brier_after']:.4f} after"
        )
    else:
        lines.append("none recorded")
    return "\n".join(lines) + "\n"


def _metrics_table(metrics: dict[str, Any], baselines: dict[str, dict[str, float]]) -> list[str]:
    names = sorted(k for k, v in metrics.items() if isinstance(v, int | float))
    if not names:
        return ["none recorded"]
    header = ["metric", "this version", *baselines]
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in names:
        cells = [name, f"{metrics[name]:.4f}"]
        cells += [_cell(baselines[b].get(name)) for b in baselines]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _listed(values: list[Any] | None) -> str:
    return ", ".join(str(v) for v in values) if values else "none"
