"""Time to a model: the whole ``dnnops train`` command against a plain PyTorch script.

A diamonds-like table (54,000 rows: six numbers, three categories, a price to predict;
43,200 training rows after the 80/10/10 split) is trained by
- ``plain``: a script a data scientist would write: pandas reads the CSV, standardizes the
  numbers and one-hot encodes the categories, and a hand loop trains the same MLP
  (128-64, dropout 0.1) with AdamW at the same batch size for the same epochs, validating
  each epoch and saving its weights;
- ``dnnops train``: the same model, batch size, optimizer and epochs from a project file,
  everything the command does included (schema, leak checks, checkpoints every epoch, the
  run record, ONNX export and parity, evaluation with the baselines, calibration,
  registration); and again with ``evaluate.baseline: none`` to show what the gradient
  boosting yardstick costs.
Each is a fresh process (imports included), alternated for ``--rounds`` rounds; the table
prints the medians and the ratio. Target (issue 28): dnnops at most 1.2x plain.

    .venv/bin/python benchmarks/time_to_model.py [--rounds 3] [--epochs 10] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

BIN = Path(sys.executable).parent

PLAIN = """
import sys, time
import numpy as np, pandas as pd, torch
from torch import nn
started = time.perf_counter()
source, epochs, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
frame = pd.read_csv(source)
y = frame.pop("price").to_numpy("float32")
numbers = frame.select_dtypes("number")
numbers = (numbers - numbers.mean()) / numbers.std()
x = pd.concat([numbers.fillna(0), pd.get_dummies(frame.select_dtypes("object"))], axis=1)
x = torch.tensor(x.to_numpy("float32"))
y = torch.tensor((y - y.mean()) / y.std())
order = np.random.default_rng(0).permutation(len(x))
test, valid, train = np.split(order, [len(x) // 10, len(x) // 5])
torch.manual_seed(0)
model = nn.Sequential(
    nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Dropout(0.1),
    nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 1),
)
optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.01, fused=True)
loss_fn = nn.MSELoss()
train_x, train_y = x[train], y[train]
loop_started = time.perf_counter()
for epoch in range(epochs):
    model.train()
    for rows in torch.randperm(len(train_x)).split(batch):
        loss = loss_fn(model(train_x[rows]).squeeze(1), train_y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        valid_loss = float(loss_fn(model(x[valid]).squeeze(1), y[valid]))
loop_s = time.perf_counter() - loop_started
torch.save(model.state_dict(), out)
print(f"{loop_s:.3f} {valid_loss:.5f}")
"""


def diamonds(rows: int, seed: int = 0) -> pd.DataFrame:
    """Shaped like the public diamonds table: price grows with carat, better cuts, colours
    and clarities cost more, and the dimensions follow carat."""
    rng = np.random.default_rng(seed)
    carat = rng.gamma(2.0, 0.4, rows).round(2) + 0.2
    cut = rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], rows)
    color = rng.choice(list("DEFGHIJ"), rows)
    clarity = rng.choice(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"], rows)
    quality = (
        pd.Series(cut).map({"Fair": 0, "Good": 1, "Very Good": 2, "Premium": 3, "Ideal": 4})
        + pd.Series(color).map({c: 6 - i for i, c in enumerate("DEFGHIJ")}) * 0.5
        + pd.Series(clarity).map({c: i for i, c in enumerate(
            ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])}) * 0.6
    ).to_numpy()  # fmt: skip
    price = 3000 * carat**1.6 * (1 + 0.06 * quality) * rng.lognormal(0, 0.12, rows)
    side = (carat / 0.0062) ** (1 / 3)
    return pd.DataFrame(
        {
            "carat": carat,
            "cut": cut,
            "color": color,
            "clarity": clarity,
            "depth": rng.normal(61.7, 1.4, rows).round(1),
            "table": rng.normal(57.4, 2.2, rows).round(0),
            "x": (side + rng.normal(0, 0.05, rows)).round(2),
            "y": (side + rng.normal(0, 0.05, rows)).round(2),
            "z": (side * 0.62 + rng.normal(0, 0.03, rows)).round(2),
            "price": price.round(0),
        }
    )


def project(folder: Path, source: Path, *, epochs: int, batch: int, baseline: str) -> Path:
    config = {
        "name": "diamonds",
        "task": "regression",
        "data": {"source": str(source), "target": "price"},
        "model": {"arch": "mlp", "params": {"hidden": [128, 64], "dropout": 0.1}},
        "train": {"epochs": epochs, "batch_size": batch, "lr": 0.003, "seed": 0},
        "evaluate": {"baseline": baseline},
    }
    path = folder / f"dnnops-{baseline}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: a gate failed, the version is still registered
        raise RuntimeError(f"{command[:3]} failed: {done.stderr[-2000:]}")
    return wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=54_000)
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = folder / "diamonds.csv"
        diamonds(args.rows).to_csv(source, index=False)
        script = folder / "plain.py"
        script.write_text(PLAIN)
        configs = {
            b: project(folder, source, epochs=args.epochs, batch=args.batch, baseline=b)
            for b in ("hist_gradient_boosting", "none")
        }
        walls: dict[str, list[float]] = {"plain": [], "dnnops": [], "dnnops, no baseline": []}
        loops: list[float] = []
        for round_ in range(args.rounds):
            wall, out = timed(
                [str(BIN / "python"), str(script), str(source), str(args.epochs),
                 str(args.batch), str(folder / "plain.pt")]
            )  # fmt: skip
            walls["plain"].append(wall)
            loops.append(float(out.split()[0]))
            for label, baseline in (("dnnops", "hist_gradient_boosting"),
                                    ("dnnops, no baseline", "none")):  # fmt: skip
                env = {**os.environ, "DNNOPS_HOME": str(folder / f"home-{round_}-{baseline}")}
                wall, _ = timed(
                    [str(BIN / "dnnops"), "train", "-c", str(configs[baseline]), "--quiet"],
                    env=env,
                )
                walls[label].append(wall)
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls.items())
                + f" (plain's loop {loops[-1]:.1f} s)",
                flush=True,
            )
    plain = statistics.median(walls["plain"])
    print(
        f"\n{args.rows} rows, batch {args.batch}, {args.epochs} epochs, medians of {args.rounds}:"
    )
    print(f"{'':24}{'wall s':>8}{'x plain':>9}")
    for label, values in walls.items():
        median = statistics.median(values)
        print(f"{label:24}{median:8.1f}{median / plain:9.2f}")
    print(f"{'plain: its loop alone':24}{statistics.median(loops):8.1f}")
    print("target: dnnops train at most 1.2x plain")


if __name__ == "__main__":
    main()
