"""Reference and current windows for the drift benchmark, as Parquet files.

20 numeric + 5 categorical features; scenarios: none, mean shift of 0.1 std on 3 numeric
features, variance x1.5 on 2, one category's frequencies permuted, and a correlation change
between two features whose marginals stay the same. Usage:

    python benchmarks/drift/make_data.py OUT_DIR --rows 1000000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = list("abcdefgh")
SHARES = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
SCENARIOS = {
    "none": [],
    "mean_shift": ["n00", "n01", "n02"],
    "variance": ["n03", "n04"],
    "category_permuted": ["c0"],
    "correlation": ["n05+n06 (joint only)"],
}


def window(rows: int, seed: int, scenario: str = "none") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = rng.standard_normal((rows, len(NUMERIC))).astype("float64")
    # n05 and n06 correlated 0.8 in the reference; "correlation" flips it to -0.8 with
    # the very same N(0, 1) marginals.
    rho = -0.8 if scenario == "correlation" else 0.8
    numeric[:, 6] = rho * numeric[:, 5] + np.sqrt(1 - rho**2) * numeric[:, 6]
    if scenario == "mean_shift":
        numeric[:, 0:3] += 0.1
    if scenario == "variance":
        numeric[:, 3:5] *= 1.5
    frame = pd.DataFrame(numeric, columns=NUMERIC)
    for index, name in enumerate(CATEGORICAL):
        shares = SHARES[::-1] if (scenario == "category_permuted" and index == 0) else SHARES
        frame[name] = pd.Categorical(rng.choice(LEVELS, rows, p=shares), categories=LEVELS)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    window(args.rows, 0).to_parquet(args.out / "reference.parquet", index=False)
    for seed, scenario in enumerate(SCENARIOS, start=1):
        window(args.rows, seed, scenario).to_parquet(args.out / f"{scenario}.parquet", index=False)


if __name__ == "__main__":
    main()
