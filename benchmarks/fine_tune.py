"""Fine-tuning against training from scratch, side by side, on another class set.

A ResNet-18 (``resnet18``, width 16, 32x32 greyscale) is trained by ``dnnops train`` on
scikit-learn's digits drawn as photos (``dnnops.example_data``), digits 0-4 only, and
registered. Then the digits 5-9, classes that version never saw, are learned twice for
``--epochs`` epochs with the same settings: from scratch, and from the registered version
(``train.init_from: base@1``: every tensor but the head carried over, a fresh head). Each
epoch's validation accuracy is read from the run's record (``dnnops runs show --json``).

    .venv/bin/python benchmarks/fine_tune.py [--epochs 12] [--base-epochs 8] [--share 1.0]

``--share`` keeps that share of each new class's photos (a small folder, where starting
from weights matters most).

Verdict (issue 30): fine-tuning reaches the accuracy training from scratch ends with in
at most a third of the epochs from scratch needed to reach it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dnnops.example_data import write_digit_photos

BIN = Path(sys.executable).parent
BASE = [str(d) for d in range(5)]


def dnnops(home: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "dnnops"), *args],
        env={**os.environ, "DNNOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"dnnops {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def train(root: Path, name: str, photos: Path, epochs: int, init_from: str | None) -> list[float]:
    """Each epoch's validation accuracy of a run of ``name`` on ``photos``."""
    train_section: dict[str, Any] = {"epochs": epochs, "batch_size": 64, "lr": 0.003, "seed": 0}
    if init_from is not None:
        train_section["init_from"] = init_from
    project = {
        "name": name,
        "data": {"source": f"{photos}/", "target": "digit",
                 "image": {"size": [32, 32], "channels": 1}},
        "model": {"arch": "resnet18", "params": {"width": 16, "small_input": True}},
        "train": train_section,
        "evaluate": {"baseline": "trivial"},
    }  # fmt: skip
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(project))
    home = root / "home"
    run_id = json.loads(dnnops(home, "train", "-c", str(config), "--quiet", "--json"))["run_id"]
    record = json.loads(dnnops(home, "runs", "show", run_id, "--json"))
    return [float(epoch["valid_accuracy"]) for epoch in record["epochs"]]


def first_reaching(curve: list[float], level: float) -> int | None:
    """The first epoch (from 1) whose accuracy is at least ``level``."""
    return next((i + 1 for i, value in enumerate(curve) if value >= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--base-epochs", type=int, default=8)
    parser.add_argument("--share", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        everything = root / "all"
        write_digit_photos(everything)
        halves = {"low": root / "low", "high": root / "high"}
        for digit in sorted(p.name for p in everything.iterdir()):
            if digit in BASE:
                shutil.copytree(everything / digit, halves["low"] / digit)
                continue
            files = sorted((everything / digit).iterdir())
            kept = files[: max(4, round(len(files) * args.share))]
            (halves["high"] / digit).mkdir(parents=True)
            for path in kept:
                shutil.copy(path, halves["high"] / digit / path.name)
        train(root, "base", halves["low"], args.base_epochs, None)
        from_scratch = train(root, "scratch", halves["high"], args.epochs, None)
        fine_tuned = train(root, "tuned", halves["high"], args.epochs, "base@1")
    print(
        f"\ndigits 5-9 ({args.share:.0%} of their photos), validation accuracy per epoch "
        "(the base version saw only 0-4)"
    )
    print(f"{'epoch':>5}{'scratch':>10}{'fine-tuned':>12}")
    for epoch, (a, b) in enumerate(zip(from_scratch, fine_tuned, strict=True), start=1):
        print(f"{epoch:>5}{a:>10.3f}{b:>12.3f}")
    level = from_scratch[-1]
    scratch_epochs = first_reaching(from_scratch, level)
    tuned_epochs = first_reaching(fine_tuned, level)
    assert scratch_epochs is not None
    print(
        f"from scratch ends at {level:.3f}, first reached at epoch {scratch_epochs}; "
        f"fine-tuned reaches it at epoch {tuned_epochs if tuned_epochs else 'never'}"
    )
    ok = tuned_epochs is not None and tuned_epochs * 3 <= scratch_epochs
    print(
        "verdict:",
        "PASS" if ok else "FAIL",
        "(fine-tuning reaches the from-scratch accuracy in at most a third of the epochs)",
    )


if __name__ == "__main__":
    main()
