"""A dataset fingerprint: SHA-256 over canonical content, independent of the file format.

The same rows give the same digest whether they came from CSV or Parquet: numbers are
hashed as little-endian float64, text as length-prefixed UTF-8, missing values as a
fixed marker, each column prefixed by its name; an image by the SHA-256 of its file's
bytes, so the same photos moved to another folder keep the fingerprint.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from dnnops.data.dataset import Dataset
from dnnops.data.media.images import is_location, read_image_bytes

_MISSING = b"\x00<missing>\x00"


def fingerprint(dataset: Dataset) -> str:
    """Hex SHA-256 of the inputs, then the labels, then the groups."""
    digest = hashlib.sha256()
    if isinstance(dataset.inputs, pd.DataFrame):
        for name in dataset.inputs.columns:
            _update_column(digest, str(name), dataset.inputs[name])
    else:
        digest.update(b"tensor" + str(dataset.inputs.shape[1:]).encode())
        digest.update(np.ascontiguousarray(dataset.inputs, dtype="<f8").tobytes())
    for name, extra in (("<target>", dataset.target), ("<group>", dataset.groups)):
        if extra is not None:
            _update_column(digest, name, extra)
    return digest.hexdigest()


def _update_column(digest: hashlib._Hash, name: str, column: pd.Series) -> None:
    encoded = name.encode()
    digest.update(len(encoded).to_bytes(8, "little") + encoded)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        numbers = np.where(np.isnan(numbers), np.nan, numbers)  # one canonical NaN
        digest.update(b"n" + np.ascontiguousarray(numbers, dtype="<f8").tobytes())
        return
    digest.update(b"s")
    for value in column.to_numpy(dtype=object):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            digest.update(_MISSING)
        elif isinstance(value, bytes) or is_location(value):  # an image: its bytes
            digest.update(b"f" + hashlib.sha256(read_image_bytes(value)).digest())
        else:
            text = str(value).encode()
            digest.update(len(text).to_bytes(8, "little") + text)
