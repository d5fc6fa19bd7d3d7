"""``dnnops data validate`` on images and texts: every cell judged by the rules serving
applies (the same decoder, the version's own tokenizer), counted per rule with the first
rows named, instead of stopping at the first bad file as training does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnnops.data.media.encode import text_cell_error, text_encoder
from dnnops.data.media.images import ImageError, decode_image, is_location, read_image_bytes

SHOWN_CHARACTERS = 80

Problems = dict[str, list[tuple[int, str]]]
"""rule -> (row, what the row held, shortened) for every row that breaks it."""


def image_problems(values: Sequence[object], *, max_pixels: int) -> Problems:
    """Each image decoded as serving decodes it (pixel budget first, then the pixels)."""
    problems: Problems = {}
    for row, value in enumerate(values):
        if value is None:
            problems.setdefault("not_an_image", []).append((row, "null"))
            continue
        try:
            decode_image(read_image_bytes(value), max_pixels=max_pixels)
        except ImageError as exc:
            shown = _tail(str(value)) if is_location(value) else _short(f"{exc}")
            problems.setdefault(exc.rule, []).append((row, shown))
    return problems


def text_problems(values: Sequence[object], *, tokenizer: str, max_length: int) -> Problems:
    """Each text as serving judges it: not a string, empty, or over the ``max_length - 1``
    tokens the model reads (reported under either policy; the policy says what happens)."""
    problems: Problems = {}
    texts, rows = [], []
    for row, value in enumerate(values):
        broken = text_cell_error(value)
        if broken is not None:
            shown = "null" if value is None else _short(repr(value))
            problems.setdefault(broken.rule, []).append((row, shown))
        else:
            texts.append(str(value))
            rows.append(row)
    if texts:
        lengths = text_encoder(tokenizer, max_length).encode(texts).lengths
        for index in np.flatnonzero(lengths > max_length - 1):
            shown = f"{int(lengths[index])} tokens: {texts[index]}"
            problems.setdefault("too_long", []).append((rows[index], _short(shown)))
    return problems


def _tail(path: str) -> str:
    """A long path's end: the file's name is what tells it apart."""
    return path if len(path) <= SHOWN_CHARACTERS else "..." + path[3 - SHOWN_CHARACTERS :]


def _short(text: str) -> str:
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 3] + "..."
