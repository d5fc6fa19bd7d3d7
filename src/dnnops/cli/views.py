"""Tables for people: evaluation reports, gates, lineage, versions."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table

from dnnops.console import format_number, key_value_table, rows_table
from dnnops.evaluate.gates import GateResult
from dnnops.evaluate.report import EvaluationReport
from dnnops.registry.manifest import Manifest
from dnnops.registry.versions import VersionRecord

HEADLINE = (
    "mae",
    "rmse",
    "r2",
    "mape",
    "robust_mae",
    "accuracy",
    "balanced_accuracy",
    "min_recall",
    "macro_f1",
    "roc_auc",
    "expected_calibration_error",
    "log_loss",
    "robust_accuracy",
    "max_fpr",
    "max_fnr",
    "group_accuracy_gap",
    "latency_p50_ms_b1",
    "latency_p99_ms_b1",
    "latency_p50_ms_b64",
    "latency_p99_ms_b64",
)
COMPARISONS = ("beats_baseline", "baseline_mae_ratio", "baseline_gap")


BASELINE_HEADERS = {"trivial": "trivial baseline", "hist_gradient_boosting": "gradient boosting"}


def report_view(report: EvaluationReport) -> Group:
    """The metrics beside the baselines' and the champion's, per-class tables, gates."""
    champion = report.champion
    baselines = list(report.baselines.items())
    columns = ["metric", "value", *(BASELINE_HEADERS.get(n, n) for n, _ in baselines)] + (
        [f"champion v{champion.version}", "change"] if champion else []
    )
    rows = []
    for name in (*HEADLINE, *COMPARISONS):
        if name not in report.metrics:
            continue
        row: list[object] = [name, report.metrics[name]]
        row += [scores.get(name, "") for _, scores in baselines]
        if champion:
            row += [champion.metrics.get(name, ""), _signed(champion.delta.get(name))]
        rows.append(row)
    parts: list[Any] = [rows_table(f"evaluation on {report.samples} held-out rows", columns, rows)]
    if report.confusion_matrix:
        parts += class_views(report.classes, report.confusion_matrix)
    if report.gates:
        parts.append(gates_view(report.gates))
    parts += [f"note: {note}" for note in report.notes]
    return Group(*parts)


MATRIX_MAX_CLASSES = 20
"""A confusion matrix wider than this is left to --json: it no longer fits a terminal."""


def class_views(classes: list[int | str], matrix: list[list[int]]) -> list[Table]:
    """Per class: its rows, recall and precision; then the confusion matrix (small ones)."""
    rows = []
    for i, name in enumerate(classes):
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        rows.append(
            [
                name,
                support,
                matrix[i][i] / support if support else "-",
                matrix[i][i] / predicted if predicted else "-",
            ]
        )
    views = [rows_table("per class", ["class", "rows", "recall", "precision"], rows)]
    if len(classes) <= MATRIX_MAX_CLASSES:
        header = ["true (row) / predicted", *[str(c) for c in classes]]
        cells = [[name, *matrix[i]] for i, name in enumerate(classes)]
        views.append(rows_table("confusion matrix", header, cells))
    return views


def gates_view(gates: list[GateResult]) -> Table:
    rows = [[g.metric, g.value, _bound(g), "pass" if g.passed else "FAIL"] for g in gates]
    return rows_table("gates", ["metric", "value", "bound", "result"], rows)


def lineage_view(record: VersionRecord, manifest: Manifest) -> Table:
    rows: dict[str, object] = {
        "version": record.ref,
        "aliases": ", ".join(record.aliases) or "-",
        "status": record.status,
        "source": record.source,
        "run": record.run_id or "-",
        "parent version": record.parent_version or "-",
        "dataset sha256": record.dataset_sha256 or "-",
        "manifest sha256": record.manifest_sha256,
        "onnx parity (max abs diff)": manifest.onnx_parity or "-",
        "files": ", ".join(sorted(manifest.files)),
        "signed": "yes" if manifest.signature else "no",
    }
    start = manifest.started_from
    rows["started from"] = (
        f"{start['origin']} (sha256 {str(start['sha256'])[:12]}…, {start['loaded']} tensors)"
        if start
        else "scratch"
    )
    if manifest.int8:
        rows["int8"] = ", ".join(f"{k} {format_number(v)}" for k, v in manifest.int8.items())
    return key_value_table(f"lineage of {record.ref}", rows)


def versions_view(model: str, records: list[VersionRecord]) -> Table:
    rows = [
        [
            r.version,
            ", ".join(r.aliases),
            r.status,
            r.source,
            r.created_at[:19],
            r.metrics.get("accuracy", ""),
            {True: "pass", False: "FAIL", None: "-"}[r.gates_passed],
            r.parent_version or "-",
        ]
        for r in records
    ]
    return rows_table(
        f"versions of {model}",
        ["version", "aliases", "status", "source", "created", "accuracy", "gates", "parent"],
        rows,
    )


def _bound(gate: GateResult) -> str:
    parts = []
    if gate.min is not None:
        parts.append(f">= {format_number(gate.min)}")
    if gate.max is not None:
        parts.append(f"<= {format_number(gate.max)}")
    return " and ".join(parts)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def inputs_view(schema: Any) -> Table:
    """The version's input features: what a request must carry, by name."""
    if schema.kind == "tensor" and schema.tensor is not None:
        t = schema.tensor
        rows = [[t.name, f"tensor {t.dtype}", str(t.shape), f"{t.min:g} .. {t.max:g}"]]
    else:
        rows = [
            [
                c.name,
                c.type + (" (nullable)" if c.nullable else ""),
                "",
                ", ".join(c.categories or [])[:60]
                if c.type == "category"
                else f"{format_number(c.min)} .. {format_number(c.max)}",
            ]
            for c in schema.columns
        ]
    return rows_table("inputs", ["feature", "type", "shape", "training range or categories"], rows)
