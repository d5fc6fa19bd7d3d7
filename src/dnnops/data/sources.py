"""Read a data source (CSV, Parquet, NPZ or a scikit-learn built-in set) into a ``Dataset``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dnnops.config import is_folder_source
from dnnops.data.dataset import Dataset
from dnnops.data.media.folder import load_image_folder, resolve_image_paths
from dnnops.errors import DataError

_BUILTIN_LOADERS = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
}


def load_source(
    source: str,
    target: str = "target",
    *,
    group: str | None = None,
    drop: Sequence[str] = (),
    require_target: bool = True,
    image: str | None = None,
) -> Dataset:
    """Load ``source`` and split off the label (and group) column.

    ``require_target=False`` accepts inference data that has no label column. ``image``
    names the image column: of a folder of images, or of a table of image paths.
    """
    if source.startswith("builtin:"):
        frame = _load_builtin(source.removeprefix("builtin:"))
    elif is_folder_source(source):
        frame = load_image_folder(Path(source), image_column=image or "image", target=target)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"data file {source} does not exist")
        if path.suffix.lower() == ".npz":
            return _load_npz(path, require_target)
        frame = _read_table(path)
        if image is not None:
            frame = resolve_image_paths(frame, image, path.parent)
    return split_columns(
        frame, source, target, group=group, drop=drop, require_target=require_target
    )


def load_frame(source: str, *, image: str | None = None, target: str = "target") -> pd.DataFrame:
    """The whole table behind a CSV, Parquet, image folder or ``builtin:`` source, label
    column included (``image``: as in ``load_source``)."""
    if source.startswith("builtin:"):
        return _load_builtin(source.removeprefix("builtin:"))
    if is_folder_source(source):
        return load_image_folder(Path(source), image_column=image or "image", target=target)
    frame = load_table(Path(source))
    return frame if image is None else resolve_image_paths(frame, image, Path(source).parent)


def load_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is, for profiling and validation."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    return _read_table(path)


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":  # arrow buffers freed column by column as pandas takes them
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            frame: pd.DataFrame = table.to_pandas(split_blocks=True, self_destruct=True)
            return frame
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv, .parquet or .npz")


def _load_builtin(name: str) -> pd.DataFrame:
    if name not in _BUILTIN_LOADERS:
        allowed = ", ".join(f"builtin:{n}" for n in _BUILTIN_LOADERS)
        raise DataError(f"unknown built-in dataset {name!r}; allowed: {allowed}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, _BUILTIN_LOADERS[name])(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    return frame


def _load_npz(path: Path, require_target: bool) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path} as NPZ (no pickled objects allowed): {exc}") from None
    if "x" not in arrays:
        raise DataError(f"{path} has no array 'x'; it holds {sorted(arrays)}")
    x = arrays["x"]
    if x.ndim < 2:
        raise DataError(
            f"{path}: 'x' must be shaped (N, ...) with one row per instance, got {x.shape}"
        )
    y = arrays.get("y")
    if y is None and require_target:
        raise DataError(f"{path} has no array 'y' with the labels")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: 'x' has {len(x)} rows but 'y' has {len(y)}")
    target = None if y is None else pd.Series(y, name="y")
    return Dataset(inputs=x, target=target, groups=None, origin=str(path))


def split_columns(
    frame: pd.DataFrame,
    origin: str,
    target: str,
    *,
    group: str | None,
    drop: Sequence[str],
    require_target: bool,
) -> Dataset:
    if target not in frame.columns and require_target:
        raise DataError(
            f"{origin} has no label column {target!r}; its columns are {list(frame.columns)[:10]}"
            " ... Set data.target in dnnops.yaml to the label column."
        )
    if group is not None and group not in frame.columns:
        raise DataError(f"{origin} has no group column {group!r} (data.group)")
    labels = frame[target] if target in frame.columns else None
    groups = frame[group] if group is not None else None
    removed = [c for c in (target, group, *drop) if c is not None and c in frame.columns]
    features = frame.drop(columns=removed).reset_index(drop=True)
    return Dataset(
        inputs=features,
        target=None if labels is None else labels.reset_index(drop=True),
        groups=None if groups is None else groups.reset_index(drop=True),
        origin=origin,
    )
