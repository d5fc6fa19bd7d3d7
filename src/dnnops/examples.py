"""The commented example project files ``dnnops init --example`` writes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dnnops.errors import UsageError

EXAMPLES = ("digits", "breast_cancer", "wine", "images", "text")
DATA = {"images": "digit-photos", "text": "tickets.csv"}
"""What an example reads that ``write_example_data`` makes beside its project file."""


def example_text(name: str) -> str:
    if name not in EXAMPLES:
        raise UsageError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    return resources.files("dnnops").joinpath(f"templates/{name}.yaml").read_text(encoding="utf-8")


def write_example_data(name: str, folder: Path) -> str | None:
    """The data an image or text example trains on, made in ``folder`` (nothing is
    downloaded); what was written, or None for the examples whose data is built in."""
    if name not in DATA:
        return None
    from dnnops.example_data import tickets_frame, write_digit_photos

    target = folder / DATA[name]
    if name == "images":
        count = write_digit_photos(target)
        return f"{target}/ ({count} photos in 10 class folders)"
    if target.exists():
        raise UsageError(f"{target} exists; remove it or pass --path elsewhere")
    frame = tickets_frame()
    frame.to_csv(target, index=False)
    return f"{target} ({len(frame)} tickets)"
