"""``dnnops init --data FILE --target COL``: a commented dnnops.yaml inferred from a file.

What is inferred, and why:
- the task, from the target: text, booleans or a few integers are classes; many distinct
  numbers are a quantity (regression);
- columns that are not features: an identifier (every value distinct, text or integers
  named like an id) is dropped;
- category columns: text columns are categories on their own; integer columns with few
  distinct values are listed as candidates in a comment, not forced;
- a model size for the row count (a wider network needs more rows to pay off), and a gate
  that demands the model beat always answering the most common class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from dnnops.errors import UsageError

Task = Literal["classification", "regression"]
FEW_VALUES = 10
"""Integer columns with at most this many distinct values may be categories."""
MAX_CLASSES = 50


@dataclass(frozen=True)
class Inferred:
    name: str
    source: Path
    target: str
    task: Task
    task_reason: str
    rows: int
    drop: list[str]
    categories: list[str]
    category_candidates: list[str]
    missing: dict[str, int]
    hidden: list[int]
    epochs: int
    majority_share: float | None


def infer_project(source: Path, target: str, task: Task | None = None) -> Inferred:
    """Read ``source`` once and decide what the project file should say."""
    from dnnops.data.sources import load_table

    frame = load_table(source)
    if target not in frame.columns:
        raise UsageError(
            f"{source} has no column {target!r}; its columns are {list(frame.columns)[:20]}"
        )
    labels = frame[target]
    inferred_task, reason = _task(labels)
    features = frame.drop(columns=[target])
    drop = [str(c) for c in features.columns if _is_identifier(features[c])]
    kept = features.drop(columns=drop)
    rows = len(frame)
    counts = labels.value_counts(normalize=True)
    return Inferred(
        name=_project_name(source),
        source=source,
        target=target,
        task=task or inferred_task,
        task_reason=reason if task is None else f"given with --task (inferred: {inferred_task})",
        rows=rows,
        drop=drop,
        categories=[str(c) for c in kept.columns if not pd.api.types.is_numeric_dtype(kept[c])],
        category_candidates=[
            str(c)
            for c in kept.columns
            if pd.api.types.is_integer_dtype(kept[c]) and kept[c].nunique() <= FEW_VALUES
        ],
        missing={str(c): int(n) for c, n in kept.isna().sum().items() if n},
        hidden=_hidden(rows),
        epochs=60 if rows < 5_000 else 30 if rows < 100_000 else 10,
        majority_share=float(counts.iloc[0]) if len(counts) else None,
    )


def _task(labels: pd.Series) -> tuple[Task, str]:
    values = labels.dropna()
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification", f"{distinct} distinct labels"
    fractional = not (values == values.round()).all()
    if fractional or distinct > max(MAX_CLASSES, len(values) // 10):
        return "regression", f"{distinct} distinct numbers{' with fractions' if fractional else ''}"
    return "classification", f"{distinct} distinct integer labels"


def _is_identifier(column: pd.Series) -> bool:
    values = column.dropna()
    if len(values) < 20 or values.nunique() != len(values):
        return False
    if not pd.api.types.is_numeric_dtype(values):
        return True  # distinct text on every row: a name or a key, nothing to learn from
    named = str(column.name).lower()
    return pd.api.types.is_integer_dtype(values) and (
        named == "id" or named.endswith(("_id", "id"))
    )


def _hidden(rows: int) -> list[int]:
    if rows < 1_000:
        return [32]
    if rows < 10_000:
        return [64, 32]
    if rows < 100_000:
        return [128, 64]
    return [256, 128]


def _project_name(source: Path) -> str:
    name = "".join(c if c.isalnum() or c in "_.-" else "-" for c in source.stem).strip("-.")
    return (name or "project")[:64]


def project_text(inferred: Inferred) -> str:
    """The commented project file."""
    q = _quote
    lines = [
        f"# dnnops project file inferred from {inferred.source} ({inferred.rows} rows) by",
        f"#   dnnops init --data {inferred.source} --target {inferred.target}",
        "# Every key is optional except name and data.source; change what the inference got",
        '# wrong. Durations are strings: "500ms", "30s", "5m", "1h", "3d".',
        f"name: {q(inferred.name)}",
        f"task: {inferred.task}                 # inferred: {inferred.task_reason}",
        "",
        "data:",
        f"  source: {q(str(inferred.source))}",
        f"  target: {q(inferred.target)}",
        "  split: {train: 0.8, valid: 0.1, test: 0.1, seed: 0, stratify: "
        + ("true}" if inferred.task == "classification" else "false}"),
        *(
            ["  # regression: the loss is train.loss (mse, or huber for outliers)"]
            if inferred.task == "regression"
            else []
        ),
        "  schema:",
        f"    categorical: {_flow([])}   # text columns are categories already: "
        + (", ".join(inferred.categories) or "none"),
    ]
    if inferred.category_candidates:
        lines.append(
            "    # integer columns with few values that may be categories: "
            + ", ".join(inferred.category_candidates)
        )
    lines += [
        f"    drop: {_flow(inferred.drop)}   # identifiers: one distinct value per row",
        "    range_tolerance: 0.1          # serving counts values 10% beyond the training range",
        "  preprocessing:",
        "    numeric: standardize          # missing numbers are imputed with the training mean",
    ]
    if inferred.missing:
        shown = ", ".join(f"{k} ({v})" for k, v in inferred.missing.items())
        lines.append(f"  # columns with missing values (rows): {shown}")
    lines += [
        "",
        "model:",
        "  arch: mlp",
        f"  params: {{hidden: {inferred.hidden}, dropout: 0.1}}   # sized for {inferred.rows} rows",
        "",
        "train:",
        f"  epochs: {inferred.epochs}",
        "  batch_size: 64",
        "  lr: 0.003",
        "  early_stopping: {metric: valid_loss, patience: 8, restore_best: true}",
        "  seed: 0",
        "",
        *_gates(inferred),
        "",
        "serve:                            # the input policy (README: Data)",
        "  missing: impute                 # impute | reject",
        "  unseen_category: unknown        # unknown | reject",
        "  out_of_range: accept            # accept | clip | reject",
        "  non_finite: reject              # reject | impute",
        "",
        "slo:",
        "  objectives:",
        "    - {name: latency, kind: latency, target: 0.99, threshold: 100ms}",
        "    - {name: availability, kind: success_rate, target: 0.999}",
    ]
    return "\n".join(lines) + "\n"


def _gates(inferred: Inferred) -> list[str]:
    if inferred.task == "regression":
        return [
            "evaluate:                         # metrics: mae, rmse, r2, mape, robust_mae",
            "  gates:                          # a failed gate: registered, no alias moves, exit 1",
            "    - {metric: r2, min: 0.5}      # explains at least half the target's variance",
        ]
    if inferred.majority_share is None:
        return ["evaluate:", "  gates: []"]
    floor = min(0.99, round(inferred.majority_share + 0.05, 2))
    return [
        "evaluate:",
        "  gates:                          # a failed gate: registered, no alias moves, exit 1",
        f"    - {{metric: accuracy, min: {floor}}}   # always answering the most common class "
        f"scores {inferred.majority_share:.2f}",
    ]


def _quote(text: str) -> str:
    dumped: str = yaml.safe_dump(text, default_style=None).strip()
    return dumped.removesuffix("\n...").strip()


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(_quote(i) for i in items) + "]"
