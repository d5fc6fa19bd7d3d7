"""``dnnops data profile`` on images and texts: what the schema would record of them."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from dnnops.data.dataset import Dataset
from dnnops.data.media.describe import describe_images, describe_texts
from dnnops.data.media.detect import text_columns
from dnnops.data.media.specs import ImageSpec, TextSpec

FOLDER_COLUMN = "image"


class MediaSummary(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["image", "text"]
    reason: str
    """Why the column is read as images or text."""
    rows: int
    nulls: int
    image: ImageSpec | None = None
    text: TextSpec | None = None
    classes: dict[str, int] | None = None
    """A folder's images per class (subfolder)."""

    def shown(self) -> dict[str, object]:
        """What a person reads of it, one line each."""
        lines: dict[str, object] = {"read as": self.reason, "rows": self.rows}
        lines["missing"] = self.nulls
        if self.image is not None:
            spec = self.image
            lines |= {
                "formats": ", ".join(spec.formats),
                "modes": ", ".join(spec.modes),
                "width": f"{spec.min_width}..{spec.max_width}",
                "height": f"{spec.min_height}..{spec.max_height}",
            }
        if self.classes:
            name, count = min(self.classes.items(), key=lambda item: item[1])
            lines["classes"] = f"{len(self.classes)}; the smallest {name!r} with {count}"
        if self.text is not None:
            spec_text = self.text
            lines |= {
                "length (characters)": f"{spec_text.min_length}..{spec_text.max_length}, "
                f"median {spec_text.median_length:g}, 99% under {spec_text.p99_length:g}",
                "ASCII share": round(spec_text.ascii_share, 4),
            }
        return lines


def media_columns(dataset: Dataset, *, folder: bool) -> dict[str, MediaSummary]:
    """The image column of a folder of images, or the free-text columns of a table."""
    frame = dataset.inputs
    if not isinstance(frame, pd.DataFrame):
        return {}
    if folder and FOLDER_COLUMN in frame.columns:
        column = frame[FOLDER_COLUMN]
        return {
            FOLDER_COLUMN: MediaSummary(
                kind="image",
                reason="a folder of images, one subfolder per class",
                rows=len(column),
                nulls=int(column.isna().sum()),
                image=describe_images(column),
                classes=(
                    {str(k): int(v) for k, v in dataset.target.value_counts().items()}
                    if dataset.target is not None
                    else None
                ),
            )
        }
    return {
        name: MediaSummary(
            kind="text",
            reason=reason,
            rows=len(frame),
            nulls=int(frame[name].isna().sum()),
            text=describe_texts(frame[name]),
        )
        for name, reason in text_columns(frame).items()
    }
