"""Images and texts as the model reads them: every bad file refused by its rule, the
tokenizer reproducible and stored as text."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dnnops.data.media.encode import CellError, encode_images, encode_texts
from dnnops.data.media.folder import load_image_folder
from dnnops.data.media.images import ImageError, decode_image, to_pixels
from dnnops.data.media.text import CLS, PAD, UNK, TextEncoder, train_tokenizer
from dnnops.errors import DataError
from tests.userdata import image_folder, tickets_frame


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_each_bad_image_is_refused_by_its_rule() -> None:
    good = _png(Image.new("RGB", (40, 30), (200, 10, 10)))
    assert decode_image(good).size == (40, 30)
    with pytest.raises(ImageError) as not_image:
        decode_image(b"GIF89a but not really")
    assert not_image.value.rule == "not_an_image"
    with pytest.raises(ImageError) as truncated:
        decode_image(_png(Image.effect_noise((64, 64), 50))[:300])
    assert truncated.value.rule == "truncated"
    bomb = _png(Image.new("L", (4000, 3000)))  # 12 MP of zeros: a few kB compressed
    assert len(bomb) < 100_000
    with pytest.raises(ImageError) as too_big:
        decode_image(bomb, max_pixels=1_000_000)
    assert too_big.value.rule == "too_many_pixels" and "12,000,000" in str(too_big.value)
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    with pytest.raises(ImageError) as unsupported:
        decode_image(gif.getvalue())
    assert unsupported.value.rule == "unsupported_format"


def test_any_mode_becomes_the_configured_channels_cut_from_the_centre() -> None:
    wide = Image.new("RGBA", (80, 40), (0, 0, 255, 128))
    wide.paste((255, 0, 0, 255), (30, 0, 50, 40))  # a red band in the middle
    pixels = to_pixels(decode_image(_png(wide)), size=(20, 20), channels=3)
    assert pixels.shape == (3, 20, 20) and pixels.dtype == np.uint8
    assert pixels[0, 10, 10] > 200 and pixels[2, 10, 10] < 50, "the centre is the red band"
    grey = to_pixels(decode_image(_png(Image.new("P", (10, 10)))), size=(8, 8), channels=1)
    assert grey.shape == (1, 8, 8)


def test_a_batch_names_the_instance_that_broke_the_rule() -> None:
    good = _png(Image.new("RGB", (16, 16), (255, 255, 255)))
    settings = {"size": (8, 8), "channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3}
    out = encode_images([good, good], max_pixels=10_000, **settings)  # type: ignore[arg-type]
    assert out.shape == (2, 192) and np.allclose(out, 1.0)  # white: (1 - 0.5) / 0.5
    with pytest.raises(CellError) as bad:
        encode_images([good, b"junk"], max_pixels=10_000, **settings)  # type: ignore[arg-type]
    assert bad.value.row == 1 and bad.value.rule == "not_an_image"
    with pytest.raises(CellError) as path_text:
        encode_images(["/etc/passwd"], max_pixels=10_000, **settings)  # type: ignore[arg-type]
    assert "must be bytes" in str(path_text.value), "text is never read as a server path"


def test_the_tokenizer_is_reproducible_and_applies_the_text_policy() -> None:
    texts = tickets_frame(200)["ticket"].tolist()
    document = train_tokenizer(texts, kind="bpe", vocab_size=120, lowercase=True)
    assert document == train_tokenizer(texts, kind="bpe", vocab_size=120, lowercase=True)
    encoder = TextEncoder(document, max_length=6)
    tokens = encoder.encode(["Refund my card", "", "zzzz qqqq"])
    assert tokens.ids[:, 0].tolist() == [CLS, CLS, CLS]
    assert tokens.ids[1, 1:].tolist() == [PAD] * 5
    assert tokens.unknown[2] > 0 and UNK in tokens.ids[2].tolist()
    long = " ".join(["refund"] * 20)
    common = {"tokenizer": document, "max_length": 6}
    kept = encode_texts([long], too_long="truncate", empty="reject", **common)  # type: ignore[arg-type]
    assert kept.shape == (1, 6) and kept.dtype == np.float32
    with pytest.raises(CellError) as too_long:
        encode_texts(["ok", long], too_long="reject", empty="reject", **common)  # type: ignore[arg-type]
    assert too_long.value.row == 1 and too_long.value.rule == "too_long"
    with pytest.raises(CellError) as empty:
        encode_texts(["   "], too_long="truncate", empty="reject", **common)  # type: ignore[arg-type]
    assert empty.value.rule == "empty"
    with pytest.raises(CellError) as number:
        encode_texts([3], too_long="truncate", empty="accept", **common)  # type: ignore[arg-type]
    assert number.value.rule == "not_text"


def test_a_folder_lists_its_images_by_class_and_says_what_is_wrong(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "photos", per_class=4)
    frame = load_image_folder(root, image_column="image", target="label")
    assert sorted(set(frame["label"])) == ["circle", "square", "stripes"]
    assert len(frame) == 12, "notes.txt is skipped"
    assert all(isinstance(p, Path) for p in frame["image"])
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(root, image_column="image", target="label")
    with pytest.raises(DataError, match="one subfolder per class"):
        load_image_folder(tmp_path / "photos" / "circle", image_column="image", target="label")
