"""Data shaped like what users bring: string labels, categories, missing values, and a
numeric target; generated here, so no test depends on a built-in set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def penguins_frame(rows: int = 360, seed: int = 0) -> pd.DataFrame:
    """Three species told apart by bill length, body mass and island; ~3% of bill lengths
    and ~4% of sexes missing, as in the public penguins CSV."""
    rng = np.random.default_rng(seed)
    species = rng.choice(SPECIES, rows)
    bill = np.select(
        [species == "Adelie", species == "Chinstrap"], [38.8, 48.8], 47.5
    ) + rng.normal(0, 1.5, rows)
    mass = np.select([species == "Gentoo"], [5076.0], 3700.0) + rng.normal(0, 250, rows)
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], rows))
    sex = rng.choice(np.array(["male", "female", None], dtype=object), rows, p=[0.48, 0.48, 0.04])
    bill[rng.random(rows) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "bill_length_mm": bill.round(1),
            "body_mass_g": mass.round(0),
            "island": island,
            "sex": sex,
            "species": species,
        }
    )


def prices_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A regression target (a price) from two numbers and a category, ~5% of one feature
    missing."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, rows).round(1)
    rooms = rng.integers(1, 7, rows).astype("float64")
    district = rng.choice(["north", "south", "centre"], rows)
    bonus = np.select([district == "centre", district == "north"], [80.0, 20.0], 0.0)
    price = 2.5 * area + 15 * rooms + bonus + rng.normal(0, 10, rows)
    rooms[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {"area": area, "rooms": rooms, "district": district, "price": price.round(2)}
    )


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def project_file(path: Path, name: str, source: Path, target: str, **sections: Any) -> Path:
    """A small, fast project file on a user's CSV; keyword arguments override sections."""
    project: dict[str, Any] = {
        "name": name,
        "data": {"source": str(source), "target": target},
        "model": {"arch": "mlp", "params": {"hidden": [32], "dropout": 0.0}},
        "train": {"epochs": 25, "batch_size": 32, "lr": 0.01, "seed": 1},
    }
    project.update(sections)
    path.write_text(yaml.safe_dump(project), encoding="utf-8")
    return path


SHAPES = ("circle", "square", "stripes")


def image_folder(root: Path, per_class: int = 40, size: int = 40, seed: int = 0) -> Path:
    """``root/CLASS/*.png|jpg`` photos of three shapes on noisy backgrounds, in varied
    sizes, modes and formats (RGB PNG, greyscale PNG, JPEG), as a user's folder holds."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(size + rng.integers(-8, 9))
            noise = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
            image = Image.fromarray(noise + 80, "RGB")
            draw = ImageDraw.Draw(image)
            colour = tuple(int(c) for c in rng.integers(150, 256, 3))
            a, b = side // 5, side - side // 5
            if shape == "circle":
                draw.ellipse((a, a, b, b), fill=colour)
            elif shape == "square":
                draw.rectangle((a, a, b, b), fill=colour)
            else:
                for x in range(0, side, 6):
                    draw.rectangle((x, 0, x + 2, side), fill=colour)
            if i % 3 == 1:
                image.convert("L").save(folder / f"{shape}-{i:03d}.png")
            elif i % 3 == 2:
                image.save(folder / f"{shape}-{i:03d}.jpg", quality=90)
            else:
                image.save(folder / f"{shape}-{i:03d}.png")
    (root / "circle" / "notes.txt").write_text("not an image")
    return root


TOPICS = {
    "billing": ["refund", "charge", "invoice", "payment", "card", "price"],
    "login": ["password", "login", "account", "locked", "reset", "email"],
    "delivery": ["parcel", "courier", "late", "address", "tracking", "box"],
}
FILLER = ["my", "the", "please", "help", "again", "today", "is", "not", "working", "with"]


def tickets_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Support tickets: a text column whose words tell the topic, a row number column, and
    the topic as a string label; a few texts are long, one is non-ASCII."""
    rng = np.random.default_rng(seed)
    topics = rng.choice(list(TOPICS), rows)
    texts = []
    for topic in topics:
        words = list(rng.choice(TOPICS[topic], rng.integers(2, 5)))
        words += list(rng.choice(FILLER, rng.integers(3, 12)))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    texts[0] = texts[0] + " Café déjà vu, naïve façade."
    return pd.DataFrame({"row": np.arange(rows), "ticket": texts, "topic": topics})
