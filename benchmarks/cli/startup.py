"""CLI start-up: light commands against ``python -c "import torch"``, side by side.

Each command runs as a fresh process ``--repeat`` times (after one warm-up run that
compiles bytecode) in a home with one registered version, one run and a prediction log;
the table prints the median wall time and its ratio to the median torch import, against
issue 13's target (at most a quarter).

    .venv/bin/python benchmarks/cli/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
TARGET = 0.25
COMMANDS = [["--help"], ["models", "list"], ["runs", "list"], ["logs", "show"]]


def timed(argv: list[str], env: dict[str, str], repeat: int) -> float:
    subprocess.run(argv, env=env, capture_output=True, check=False)  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def prepared_home(folder: Path) -> dict[str, str]:
    env = {**os.environ, "DNNOPS_HOME": str(folder / "home")}
    config = folder / "dnnops.yaml"
    project = {
        "name": "wine",
        "data": {"source": "builtin:wine"},
        "model": {"params": {"hidden": [16]}},
        "train": {"epochs": 2},
    }
    config.write_text(yaml.safe_dump(project))
    subprocess.run(
        [str(BIN / "dnnops"), "train", "-c", str(config), "--quiet"], env=env, check=True
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = prepared_home(Path(scratch))
        torch_s = timed([sys.executable, "-c", "import torch"], env, args.repeat)
        rows = [(" ".join(c), timed([str(BIN / "dnnops"), *c], env, args.repeat)) for c in COMMANDS]
    print(f"python -c 'import torch': {torch_s:.2f} s (median of {args.repeat})")
    print("| command | seconds | / torch import | target <= 25% |")
    print("| --- | --- | --- | --- |")
    for name, seconds in rows:
        ratio = seconds / torch_s
        verdict = "met" if ratio <= TARGET else "missed"
        print(f"| dnnops {name} | {seconds:.2f} | {ratio:.0%} | {verdict} |")


if __name__ == "__main__":
    main()
