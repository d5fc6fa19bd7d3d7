"""The data behind ``dnnops init --example images`` and ``--example text``, made here.

Nothing is downloaded: the photos are scikit-learn's handwritten digits (shipped inside
the package) drawn as PNG files of a usual folder layout, each placed, scaled and lit a
little differently as a camera would; the texts are support tickets generated from a seed,
whose topics share words, as real tickets do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnops.errors import UsageError

PHOTO_SIDE = 32


def write_digit_photos(folder: Path, seed: int = 0) -> int:
    """``folder/<digit>/<n>.png`` for scikit-learn's 1,797 digits; returns how many."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty; remove it or pass --path elsewhere")
    digits = load_digits()
    rng = np.random.default_rng(seed)
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        ink = (pixels / 16.0 * 255.0).astype(np.uint8)
        side = int(rng.integers(20, 29))  # the digit's size in the frame
        digit = Image.fromarray(ink, "L").resize((side, side), Image.Resampling.BICUBIC)
        background = rng.integers(0, 40, (PHOTO_SIDE, PHOTO_SIDE)).astype(np.uint8)
        frame = Image.fromarray(background, "L")
        left, top = (int(v) for v in rng.integers(0, PHOTO_SIDE - side + 1, 2))
        frame.paste(digit, (left, top), mask=digit)
        light = float(rng.uniform(0.8, 1.2))
        frame = frame.point(lambda v, k=light: min(255, int(v * k)))
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        frame.save(target / f"{index:04d}.png")
    return len(digits.images)


TOPICS = {
    "billing": ["refund", "charged", "twice", "invoice", "payment", "card", "price", "bill"],
    "login": ["password", "login", "account", "locked", "reset", "email", "code", "sign"],
    "delivery": ["parcel", "courier", "late", "address", "tracking", "box", "arrived", "order"],
    "product": ["broken", "screen", "battery", "cracked", "stopped", "charger", "order", "box"],
    "cancel": ["cancel", "subscription", "plan", "renewal", "account", "refund", "stop", "bill"],
}
"""Each topic's words; some appear under two topics (a refund, an order, an account)."""
FILLER = [
    *("i", "my", "the", "a", "please", "help", "again", "today", "it", "is", "not"),
    *("working", "with", "since", "this", "week", "and", "can", "you", "still", "no"),
    *("one", "answered", "hello", "thanks", "urgent"),
]


def tickets_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Support tickets: ``ticket`` (the text), ``topic`` (the label) and a ticket number."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    shares = np.array([0.3, 0.25, 0.25, 0.15, 0.05])
    topics = rng.choice(names, rows, p=shares)
    texts = []
    for topic in topics:
        words = list(rng.choice(TOPICS[topic], rng.integers(1, 4)))
        if rng.random() < 0.2:  # a word of another topic: tickets ramble
            words.append(str(rng.choice(TOPICS[str(rng.choice(names))])))
        words += list(rng.choice(FILLER, rng.integers(4, 20)))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", "..."]))
    return pd.DataFrame(
        {"ticket_id": np.arange(100_000, 100_000 + rows), "ticket": texts, "topic": topics}
    )
