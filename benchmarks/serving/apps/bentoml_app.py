"""BentoML with adaptive batching (max 64), the same MLP and weights as the dnnops side."""

from __future__ import annotations

import bentoml
import numpy as np
import torch
from plain_mlp import load_from_environment


@bentoml.service(workers=1)
class Mlp:
    def __init__(self) -> None:
        self.model = load_from_environment()

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, instances: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(instances.astype("float32"))).argmax(dim=-1).numpy()
