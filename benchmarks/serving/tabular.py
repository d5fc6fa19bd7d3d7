"""Tabular serving benchmark: requests by feature name against tensor requests, same run.

Two models of the same size (an MLP 44 -> 256 -> 256 -> 3), each trained for one epoch by
``dnnops train`` on a CSV generated here:
- ``by-name``: 12 numeric and 4 categorical features (8 levels each, one-hot to 44
  inputs), one JSON object keyed by feature name per request, a missing value in it;
- ``tensor``: 44 numeric features, one list of 44 numbers per request.
Each is served by ``dnnops serve`` (prediction log and metrics on) and driven by ``wrk``;
the table prints requests/s, P50, P99 and the ratio by-name / tensor against the target
(issue 13: at least 50%).

    .venv/bin/python benchmarks/serving/tabular.py [--duration 10] [--concurrency 16,64]

Needs ``wrk`` (apt-get install wrk). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, free_port, run_wrk, wait_until_ready

NUMERIC, CATEGORICAL, LEVELS = 12, 4, 8
TARGET = 0.5


def tables(rows: int = 3000) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    named = {f"n{i}": rng.normal(size=rows).round(3) for i in range(NUMERIC)}
    for i in range(CATEGORICAL):
        named[f"c{i}"] = rng.choice([f"level{j}" for j in range(LEVELS)], rows)
    width = NUMERIC + CATEGORICAL * LEVELS
    tensor = {f"x{i}": rng.normal(size=rows).round(3) for i in range(width)}
    label = rng.choice(["a", "b", "c"], rows)
    return {
        "by-name": pd.DataFrame({**named, "label": label}),
        "tensor": pd.DataFrame({**tensor, "label": label}),
    }


def request_body(kind: str, frame: pd.DataFrame) -> dict[str, object]:
    row = frame.drop(columns=["label"]).iloc[0].to_dict()
    if kind == "by-name":
        row["n0"] = None  # imputed as training did: the policy path runs too
        return {"instances": [row]}
    return {"instances": [list(row.values())]}


def train(folder: Path, home: Path, kind: str, frame: pd.DataFrame) -> None:
    source = folder / f"{kind}.csv"
    frame.to_csv(source, index=False)
    config = folder / f"{kind}.yaml"
    project = {
        "name": kind,
        "data": {"source": str(source), "target": "label"},
        "model": {"arch": "mlp", "params": {"hidden": [256, 256], "dropout": 0.0}},
        "train": {"epochs": 1},
    }
    config.write_text(yaml.safe_dump(project))
    env = {**os.environ, "DNNOPS_HOME": str(home)}
    subprocess.run(
        [str(BIN / "dnnops"), "train", "-c", str(config), "--quiet", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )


def wrk_script(folder: Path, kind: str, body: dict[str, object]) -> Path:
    path = folder / f"{kind}.json"
    path.write_text(json.dumps(body))
    script = folder / f"{kind}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{path}", "r")\nwrk.body = f:read("*all")\nf:close()\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def measure(
    home: Path, kind: str, script: Path, concurrency: list[int], duration: float
) -> dict[int, dict[str, float]]:
    port = free_port()
    env = {**os.environ, "DNNOPS_HOME": str(home)}
    server = subprocess.Popen(
        [str(BIN / "dnnops"), "serve", "--model", f"{kind}@1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/v2/health/ready", server)
        url = f"http://127.0.0.1:{port}/v1/models/{kind}:predict"
        run_wrk(url, script, concurrency[0], 2, server.pid)  # warm-up
        return {c: run_wrk(url, script, c, duration, server.pid) for c in concurrency}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        home = folder / "home"
        results = {}
        for kind, frame in tables().items():
            train(folder, home, kind, frame)
            script = wrk_script(folder, kind, request_body(kind, frame))
            results[kind] = measure(home, kind, script, concurrency, args.duration)
    print("| requests | concurrency | req/s | P50 ms | P99 ms | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, by_concurrency in results.items():
        for c, r in by_concurrency.items():
            print(
                f"| {kind} | {c} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
                f"| {r['non_2xx']:.0f} |"
            )
    for c in concurrency:
        ratio = results["by-name"][c]["rps"] / results["tensor"][c]["rps"]
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"by-name / tensor at {c}: {ratio:.0%} ({verdict} the {TARGET:.0%} target)")


if __name__ == "__main__":
    main()
