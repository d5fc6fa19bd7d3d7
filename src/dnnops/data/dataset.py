"""The in-memory dataset every stage shares: inputs, optional labels, optional groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Inputs = pd.DataFrame | np.ndarray
"""A table of feature columns, or an array of instances shaped ``(N, *shape)``."""


@dataclass(frozen=True)
class Dataset:
    inputs: Inputs
    target: pd.Series | None
    """Labels; ``None`` for inference data that carries none."""
    groups: pd.Series | None
    """The fairness group column named by ``data.group``, kept out of the features."""
    origin: str

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def is_table(self) -> bool:
        return isinstance(self.inputs, pd.DataFrame)

    def take(self, rows: np.ndarray) -> Dataset:
        """The subset at positional ``rows``, as a new dataset."""
        inputs = (
            self.inputs.iloc[rows] if isinstance(self.inputs, pd.DataFrame) else self.inputs[rows]
        )
        return Dataset(
            inputs=inputs,
            target=None if self.target is None else self.target.iloc[rows],
            groups=None if self.groups is None else self.groups.iloc[rows],
            origin=self.origin,
        )
