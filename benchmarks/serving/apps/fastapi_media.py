"""What most teams write first for photos and texts: FastAPI + pydantic, Pillow or the
tokenizer, one torch forward per request. The same weights and preprocessing as the
dnnops version it is compared with (read from that version's training run)."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI
from PIL import Image
from pydantic import BaseModel
from safetensors.torch import load_file
from tokenizers import Tokenizer

from dnnops.models import ModelSpec, build_model

RUN = Path(os.environ["BENCH_RUN"])
spec = json.loads((RUN / "run.json").read_text())["spec"]
model = build_model(ModelSpec.from_dict(spec))
model.load_state_dict(load_file(str(RUN / "model.safetensors")))
model.eval()
torch.set_num_threads(1)
[column] = json.loads((RUN / "data" / "preprocessing.json").read_text())["columns"]
app = FastAPI()


class Instances(BaseModel):
    instances: list[dict[str, str] | str]


def pixels(b64: str) -> torch.Tensor:
    image = column["image"]
    height, width = image["size"]
    picture = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
    scale = max(width / picture.width, height / picture.height)
    picture = picture.resize(
        (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
    )
    left, top = (picture.width - width) // 2, (picture.height - height) // 2
    picture = picture.crop((left, top, left + width, top + height))
    array = torch.from_numpy(np.asarray(picture, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(image["mean"])[:, None, None]
    std = torch.tensor(image["std"])[:, None, None]
    return (array - mean) / std


if column["text"] is not None:
    tokenizer = Tokenizer.from_str(column["text"]["tokenizer"])
    LENGTH = column["text"]["max_length"]


def token_ids(text: str) -> torch.Tensor:
    ids = [2, *tokenizer.encode(text, add_special_tokens=False).ids[: LENGTH - 1]]
    return torch.tensor(ids + [0] * (LENGTH - len(ids)), dtype=torch.float32)


@app.post("/predict")
def predict(body: Instances) -> dict[str, list[int]]:
    if column["image"] is not None:
        rows = [pixels(i["b64"] if isinstance(i, dict) else i) for i in body.instances]
    else:
        rows = [token_ids(str(i)) for i in body.instances]
    with torch.inference_mode():
        logits = model(torch.stack(rows))
    return {"predictions": logits.argmax(dim=1).tolist()}
