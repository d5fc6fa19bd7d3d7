"""LitServe with batching (max 64, 2 ms), the same MLP and weights as the dnnops side."""

from __future__ import annotations

import os
import sys

import litserve as ls
import torch
from plain_mlp import load_from_environment


class MlpApi(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.model = load_from_environment()

    def decode_request(self, request: dict) -> torch.Tensor:  # type: ignore[type-arg]
        return torch.tensor(request["instances"][0], dtype=torch.float32)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(x).argmax(dim=-1)

    def encode_response(self, output: torch.Tensor) -> dict:  # type: ignore[type-arg]
        return {"predictions": [int(output)]}


if __name__ == "__main__":
    api = MlpApi(max_batch_size=64, batch_timeout=0.002)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(port=int(sys.argv[1]), host="127.0.0.1", generate_client_file=False)
    os._exit(0)
