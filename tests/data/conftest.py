from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def people_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small mixed-type table: ints, floats, a category, a bool, a nullable column, a label."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    height = rng.normal(170, 10, rows).round(1)
    city = rng.choice(["Lyon", "Oslo", "Lima"], rows)
    member = rng.random(rows) < 0.5
    score = rng.normal(0, 1, rows)
    score[rng.random(rows) < 0.1] = np.nan
    label = np.where((age > 45) ^ member, "yes", "no")
    return pd.DataFrame(
        {
            "age": age,
            "height": height,
            "city": city,
            "member": member,
            "score": score,
            "label": label,
        }
    )


@pytest.fixture
def people_csv(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    people_frame().to_csv(path, index=False)
    return path
