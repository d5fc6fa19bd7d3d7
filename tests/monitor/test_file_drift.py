"""Column-by-column drift between Parquet files agrees with the in-memory path, flags the
planted features and the broken correlation, and the CLI takes that path for Parquet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dnnops.config import DriftConfig
from dnnops.monitor.file_drift import parquet_drift
from dnnops.monitor.stats.dataset_drift import dataset_drift, reference_from_frame
from tests.conftest import CliResult


def frame(rows: int, seed: int, shift: bool = False, flip: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 6))
    rho = -0.8 if flip else 0.8
    x[:, 5] = rho * x[:, 4] + np.sqrt(1 - rho**2) * x[:, 5]
    if shift:
        x[:, 0] += 0.3
    out = pd.DataFrame(x, columns=[f"n{i}" for i in range(6)])
    levels = np.array(["a", "b", "c"])
    out["c"] = levels[rng.choice(3, rows, p=[0.6, 0.3, 0.1] if not shift else [0.1, 0.3, 0.6])]
    return out


def test_parquet_drift_matches_the_in_memory_path(tmp_path: Path) -> None:
    reference, current = frame(20_000, 0), frame(20_000, 1, shift=True)
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    config = DriftConfig(method="ks_wasserstein")
    streamed = parquet_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet", config)
    in_memory = dataset_drift(reference_from_frame(reference), current, config)
    assert [f.feature for f in streamed.features if f.drifted] == ["n0", "c"]
    for ours, theirs in zip(streamed.features, in_memory.features, strict=True):
        assert (ours.feature, ours.drifted) == (theirs.feature, theirs.drifted)
        assert abs(ours.score - theirs.score) < 1e-9
    assert streamed.multivariate is not None and not streamed.multivariate.drifted


def test_the_cli_catches_a_broken_correlation_in_parquet_files(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    frame(20_000, 0).to_parquet(tmp_path / "ref.parquet")
    frame(20_000, 2, flip=True).to_parquet(tmp_path / "cur.parquet")
    result = cli(
        "monitor", "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json"
    )
    assert result.code == 1  # drifted: exit 1
    drift = result.json()["drift"]
    assert [f["feature"] for f in drift["features"] if f["drifted"]] == []
    assert drift["multivariate"]["drifted"] is True
    missing = cli("monitor", "drift", str(tmp_path / "nope.parquet"), str(tmp_path / "cur.parquet"))
    assert missing.code == 2 and "does not exist" in missing.err
