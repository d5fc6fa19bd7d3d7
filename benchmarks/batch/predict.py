"""Batch prediction against the model's offline throughput, same run.

Generates a penguins-like table (numbers, categories, missing values, string labels),
trains a small MLP on 5,000 rows with ``dnnops train``, writes ``--rows`` rows to Parquet
and CSV, then times, each as a fresh process:
- ``offline``: the ONNX graph alone on the preprocessed rows, batch 65,536, every core;
- ``dnnops predict`` on Parquet and on CSV (reading, the input policy, encoding, the
  graph, writing Parquet);
- ``dnnops predict --engine ray`` on the same Parquet file (issue 16: the two engines side
  by side), on a Ray cluster the run starts on this machine (its start-up included, as a
  user without a cluster pays it) or on ``--address``.
- ``plain``: what a user would write without dnnops, as a fresh process: read the same
  file in chunks with pandas, standardize and one-hot it with the version's stored
  parameters, run onnxruntime, write predictions and probabilities to Parquet.
The table prints rows/s and each dnnops run against the plain loop on the same file
(issue 28's target: at least 70%); the offline graph alone is printed as the ceiling.

    .venv/bin/python benchmarks/batch/predict.py [--rows 1000000] [--no-ray] [--address A]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.userdata import penguins_frame

BIN = Path(sys.executable).parent
TARGET = 0.7
OFFLINE = """
import sys, time
import pandas as pd
import dnnops
from dnnops.data.preprocess import apply_preprocessing
from dnnops.registry.loader import load_version, make_predictor
from dnnops.registry.open import open_registry
from dnnops.home import resolve_home
registry = open_registry(resolve_home())
loaded = load_version(registry, registry.resolve_ref("penguins@1"))
x = apply_preprocessing(loaded.preprocessor, pd.read_parquet(sys.argv[1]))
run = make_predictor(loaded, __import__("os").cpu_count())
run(x[:1024])
started = time.perf_counter()
for start in range(0, len(x), 65536):
    run(x[start:start + 65536])
print(len(x) / (time.perf_counter() - started))
"""


PLAIN = """
import sys, os, json
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq, onnxruntime as ort
source, model, pre, out = sys.argv[1:5]
pre = json.load(open(pre))
options = ort.SessionOptions()
options.intra_op_num_threads = os.cpu_count()
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
classes = np.array(json.loads(sys.argv[5]), dtype=object)
writer = None
chunks = (b.to_pandas() for b in pq.ParquetFile(source).iter_batches(65536)) if source.endswith(
    ".parquet") else pd.read_csv(source, chunksize=65536)
for frame in chunks:
    parts = []
    for column in pre["columns"]:
        values = frame[column["name"]]
        if column["type"] == "category":
            dummies = [(values.astype(str) == c).to_numpy("float32") for c in column["categories"]]
            parts += dummies
        elif column["type"] == "bool":
            parts.append(values.fillna(0).astype("float32").to_numpy())
        else:
            numbers = values.to_numpy("float64")
            numbers = np.where(np.isfinite(numbers), numbers, column["fill"])
            parts.append(((numbers - column["offset"]) / column["scale"]).astype("float32"))
    x = np.column_stack(parts)
    logits = session.run(None, {name: x})[0]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    table = pa.table({"prediction": classes[probabilities.argmax(axis=1)].tolist(),
                      **{f"probability_{c}": probabilities[:, i] for i, c in enumerate(classes)}})
    writer = writer or pq.ParquetWriter(out, table.schema)
    writer.write_table(table)
writer.close()
"""
EXPORT = """
import sys, json
from dnnops.home import resolve_home
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_registry
registry = open_registry(resolve_home())
loaded = load_version(registry, registry.resolve_ref("penguins@1"))
open(sys.argv[1], "wb").write(loaded.graph)
open(sys.argv[2], "w").write(loaded.preprocessor.model_dump_json())
print(json.dumps(loaded.classes))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hidden", default="64,64", help="The MLP's hidden widths.")
    parser.add_argument("--no-ray", action="store_true", help="Leave --engine ray out.")
    parser.add_argument("--address", help="A running Ray cluster for --engine ray.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = {**os.environ, "DNNOPS_HOME": str(folder / "home")}
        penguins_frame(5000).to_csv(folder / "train.csv", index=False)
        project = {
            "name": "penguins",
            "data": {"source": str(folder / "train.csv"), "target": "species"},
            "model": {"params": {"hidden": [int(w) for w in args.hidden.split(",")]}},
            "train": {"epochs": 2},
        }
        (folder / "dnnops.yaml").write_text(yaml.safe_dump(project))
        subprocess.run(
            [str(BIN / "dnnops"), "train", "-c", str(folder / "dnnops.yaml"), "--quiet"],
            env=env,
            check=True,
            capture_output=True,
        )
        rows = penguins_frame(args.rows, seed=1).drop(columns=["species"])
        rows.to_parquet(folder / "rows.parquet")
        rows.to_csv(folder / "rows.csv", index=False)
        offline = float(
            subprocess.run(
                [sys.executable, "-c", OFFLINE, str(folder / "rows.parquet")],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        classes = subprocess.run(
            [sys.executable, "-c", EXPORT, str(folder / "model.onnx"), str(folder / "pre.json")],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        plain = {}
        for suffix in ("parquet", "csv"):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", PLAIN, str(folder / f"rows.{suffix}"),
                 str(folder / "model.onnx"), str(folder / "pre.json"),
                 str(folder / "plain.parquet"), classes],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            plain[suffix] = args.rows / (time.perf_counter() - started)
        timings = {}
        runs: dict[str, tuple[str, list[str]]] = {"parquet": ("parquet", []), "csv": ("csv", [])}
        if not args.no_ray:
            address = ["--address", args.address] if args.address else []
            runs["parquet, --engine ray"] = ("parquet", ["--engine", "ray", *address])
        for name, (suffix, options) in runs.items():
            started = time.perf_counter()
            subprocess.run(
                [str(BIN / "dnnops"), "predict", str(folder / f"rows.{suffix}"), "--model",
                 "penguins@1", "--out", str(folder / "out.parquet"), "--quiet", *options],
                env=env,
                check=True,
                capture_output=True,
            )  # fmt: skip
            timings[name] = args.rows / (time.perf_counter() - started)
    print(f"| {args.rows:,} rows, MLP {args.hidden} | rows/s | / plain loop | target >= 70% |")
    print("| --- | --- | --- | --- |")
    print(f"| offline graph (preprocessed, in memory, every core) | {offline:,.0f} | | |")
    for suffix, rate in plain.items():
        print(f"| plain onnxruntime loop ({suffix} in, whole process) | {rate:,.0f} | 100% | |")
    for name, rate in timings.items():
        ratio = rate / plain[name.split(",")[0]]
        verdict = "met" if ratio >= TARGET else "missed"
        label = f"dnnops predict ({name} in, whole process)"
        print(f"| {label} | {rate:,.0f} | {ratio:.0%} | {verdict} |")


if __name__ == "__main__":
    main()
