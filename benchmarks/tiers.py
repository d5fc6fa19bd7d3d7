"""Model tiers against the large model alone (issue 17: at least 2x less model CPU per
prediction, accuracy within 0.1 point).

Trains a small and a large MLP on a built-in set with ``dnnops train``, registers them as
tiers with ``dnnops models tier`` (thresholds chosen on the validation split), then on the
test split (which chose nothing) measures each one's accuracy and model CPU per
prediction: process CPU time of the predictors alone, one intra-op thread, in batches of
64 (what the server's batcher forms under load) and of 1, the median of ``--repeat`` runs.

    .venv/bin/python benchmarks/tiers.py [--data builtin:digits] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

SMALL = {"hidden": [32], "dropout": 0.0}
LARGE = {"hidden": [1024, 1024], "dropout": 0.1}
TARGET_RATIO = 2.0
TARGET_LOSS = 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="builtin:digits")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        env = {**os.environ, "DNNOPS_HOME": str(home)}
        for name, params, lr in (("small", SMALL, 0.01), ("large", LARGE, 0.001)):
            config = Path(folder) / f"{name}.yaml"
            project = {
                "name": name,
                "data": {"source": args.data, "preprocessing": {"numeric": "scale"}},
                "model": {"arch": "mlp", "params": params},
                "train": {"epochs": args.epochs, "batch_size": 64, "lr": lr, "seed": 1},
            }
            config.write_text(yaml.safe_dump(project))
            _dnnops(env, "train", "-c", str(config), "--quiet", "--json")
        made = json.loads(
            _dnnops(env, "models", "tier", "tiered", "--tiers", "small@1,large@1", "--json")
        )
        table = _measure(home, args.repeat)
    plan = made["tiers"]
    print(
        f"thresholds chosen on {plan['chosen_on']['rows']} rows ({plan['chosen_on']['source']}):"
        f" first tier answers {plan['chosen_on']['shares'][0]:.1%}"
    )
    print(f"\nmeasured on {plan['tested_on']['rows']} rows ({plan['tested_on']['source']})")
    print(f"{'model':<10} {'accuracy':>9} {'CPU us/pred b64':>16} {'CPU us/pred b1':>15}")
    for name, row in table.items():
        print(f"{name:<10} {row['accuracy']:>9.4f} {row['b64']:>16.1f} {row['b1']:>15.1f}")
    ratio64 = table["large"]["b64"] / table["tiered"]["b64"]
    ratio1 = table["large"]["b1"] / table["tiered"]["b1"]
    loss = table["large"]["accuracy"] - table["tiered"]["accuracy"]
    escalated = 1.0 - table["tiered"]["first_share"]
    print(f"\nescalated on the test rows: {escalated:.1%}")
    print(
        f"large / tiered CPU per prediction: {ratio64:.2f}x at batch 64, {ratio1:.2f}x at batch 1"
    )
    print(f"accuracy given up: {loss * 100:+.2f} points")
    cheaper = ratio64 >= TARGET_RATIO
    close = loss <= TARGET_LOSS + 1e-12
    verdict = "MET" if cheaper and close else "NOT MET"
    print(
        f"verdict: {verdict} (target: >= {TARGET_RATIO:g}x less CPU at batch 64, accuracy "
        f"within {TARGET_LOSS * 100:g} point of the large model alone)"
    )


def _dnnops(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dnnops", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"dnnops {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _measure(home: Path, repeat: int) -> dict[str, dict[str, float]]:
    from dnnops.home import resolve_home
    from dnnops.registry.loader import load_version, make_cascade, make_predictor
    from dnnops.registry.open import open_registry
    from dnnops.registry.tiering import held_out_rows

    registry = open_registry(resolve_home(home))
    tiered = load_version(registry, registry.resolve("tiered", 1))
    _, test = held_out_rows(registry, tiered, None)
    assert test is not None
    cascade = make_cascade(tiered, threads=1)
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "small": make_predictor(load_version(registry, registry.resolve("small", 1)), 1),
        "large": make_predictor(load_version(registry, registry.resolve("large", 1)), 1),
        "tiered": lambda x: cascade(x).logits,
    }
    table = {}
    for name, predict in predictors.items():
        predicted = predict(test.x).argmax(axis=1)
        table[name] = {
            "accuracy": float(np.mean(predicted == test.y)),
            "b64": _cpu_us_per_row(predict, test.x, 64, repeat),
            "b1": _cpu_us_per_row(predict, test.x, 1, repeat),
        }
    table["tiered"]["first_share"] = float(np.mean(cascade(test.x).tiers == 0))
    return table


def _cpu_us_per_row(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int, repeat: int
) -> float:
    """Median over runs of process CPU time per row, predicting ``x`` in batches."""
    batches = [x[i : i + batch] for i in range(0, len(x), batch)]
    for part in batches[:3]:
        predict(part)  # warm-up
    runs = []
    passes = max(1, 2000 // len(x))
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(passes):
            for part in batches:
                predict(part)
        runs.append((time.process_time() - started) / (passes * len(x)) * 1e6)
    return statistics.median(runs)


if __name__ == "__main__":
    main()
