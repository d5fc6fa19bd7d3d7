"""What most teams write first: FastAPI + pydantic, one torch forward per request."""

from __future__ import annotations

import os

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from safetensors.torch import load_file

from dnnops.models import ModelSpec, build_model

HIDDEN = [int(h) for h in os.environ["BENCH_HIDDEN"].split(",")]
FEATURES = int(os.environ["BENCH_FEATURES"])
model = build_model(ModelSpec("mlp", (FEATURES,), 10, {"hidden": HIDDEN, "dropout": 0.0}))
model.load_state_dict(load_file(os.environ["BENCH_WEIGHTS"]))
model.eval()
torch.set_num_threads(1)
app = FastAPI()


class Instances(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
def predict(body: Instances) -> dict[str, list[int]]:
    with torch.inference_mode():
        logits = model(torch.tensor(body.instances, dtype=torch.float32))
    return {"predictions": logits.argmax(dim=1).tolist()}
