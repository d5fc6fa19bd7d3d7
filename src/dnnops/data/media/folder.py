"""Image sources: a folder with one subfolder per class, or a table whose column holds
each image's path. Both become a table whose image column holds ``Path`` objects: the
bytes are read when an image is decoded, so a folder of photos is never all in memory,
and only training and batch code ever makes a ``Path`` (a request's text is never one).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dnnops.data.media.images import IMAGE_SUFFIXES, ImageUrl
from dnnops.errors import DataError

log = logging.getLogger(__name__)


def load_image_folder(root: Path, *, image_column: str, target: str) -> pd.DataFrame:
    """``root/CLASS/*.jpg|png|webp`` as rows (image path, class), in a stable order.
    Files of other kinds are skipped and counted; a class folder without images, or a
    folder without class folders, is an error that says what the layout should be."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"{root} has no class folders; lay images out as {root}/CLASS/IMAGE.jpg, "
            "one subfolder per class"
        )
    paths: list[Path] = []
    labels: list[str] = []
    skipped = 0
    for folder in classes:
        found = 0
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            paths.append(path)
            labels.append(folder.name)
            found += 1
        if not found:
            raise DataError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if skipped:
        log.warning("%s: skipped %d file(s) that are not JPEG, PNG or WebP images", root, skipped)
    return pd.DataFrame({image_column: pd.Series(paths, dtype=object), target: labels})


def resolve_image_paths(frame: pd.DataFrame, column: str, base: Path) -> pd.DataFrame:
    """The table with ``column``'s paths as ``Path`` objects, relative ones taken from
    ``base`` (the table's folder), URLs as ``ImageUrl`` (read through fsspec) and bytes
    (a Parquet binary column) as they are; a missing cell stays missing."""
    if column not in frame.columns:
        raise DataError(
            f"data.image.column is {column!r}, a column the table lacks; its columns are "
            f"{list(frame.columns)[:20]}"
        )

    def resolved(value: object) -> object:
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, bytes | bytearray):  # a Parquet binary column: the images
            return bytes(value)
        if "://" in str(value):
            return ImageUrl(str(value))
        path = Path(str(value))
        return path if path.is_absolute() else base / path

    out = frame.copy()
    out[column] = pd.Series([resolved(v) for v in frame[column]], dtype=object, index=frame.index)
    return out


def image_files(root: Path, *, column: str) -> pd.DataFrame:
    """Every JPEG, PNG or WebP under ``root`` (any depth), in a stable order: the images
    ``dnnops predict FOLDER`` answers, with the ``path`` each came from (relative)."""
    paths = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return pd.DataFrame(
        {
            column: pd.Series(paths, dtype=object),
            "path": [str(p.relative_to(root)) for p in paths],
        }
    )
