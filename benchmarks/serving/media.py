"""Serving photos and texts: dnnops against plain FastAPI and the machine's limit, side by side.

Image: a ResNet-18 of torchvision's size (``resnet18``, width 64) trained for one epoch by
``dnnops train`` on generated photos, at 64x64 and at 224x224; each request holds one
JPEG as v1's ``{"b64": ...}`` (an 80x80 photo for the 64 model, 256x256 for the 224 one).
Text: the text transformer trained on generated tickets; each request holds one ticket.
``wrk`` drives each server at ``--concurrency`` (32) for ``--duration`` seconds.

Beside dnnops (``dnnops serve``, one worker, prediction log and metrics on):

- plain FastAPI + torch (``apps/fastapi_media.py``): Pillow or the tokenizer, then one
  torch forward per request, with the same weights and preprocessing;
- the machine's limit: the same decode and preprocessing (dnnops's own) and the same ONNX
  graph, offline, at batch 32 on every core: what any server could reach here.

    .venv/bin/python benchmarks/serving/media.py [--duration 10] [--models img64,img224,text]

Verdict (issue 30): requests/s at least 70% of the limit and at least 2x plain FastAPI.
Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, run_wrk, wait_for_port, wait_until_ready

from dnnops.data.preprocess import apply_preprocessing
from dnnops.example_data import tickets_frame
from dnnops.home import resolve_home
from dnnops.registry.loader import load_version
from dnnops.registry.onnx_runner import OnnxRunner
from dnnops.registry.open import open_registry

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SHAPES = ("circle", "square", "stripes")
IMAGES = {"img64": (64, 80), "img224": (224, 256)}
"""The model's side and the side of the photos it is sent."""
OFFLINE_BATCH = 32


def photo(shape: str, side: int, rng: np.random.Generator) -> Image.Image:
    noise = rng.integers(0, 60, (side, side, 3), dtype=np.uint8) + 80
    image = Image.fromarray(noise.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    a, b = side // 5, side - side // 5
    colour = tuple(int(c) for c in rng.integers(150, 256, 3))
    if shape == "circle":
        draw.ellipse((a, a, b, b), fill=colour)
    elif shape == "square":
        draw.rectangle((a, a, b, b), fill=colour)
    else:
        for x in range(0, side, max(4, side // 10)):
            draw.rectangle((x, 0, x + side // 30 + 1, side), fill=colour)
    return image


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def train(folder: Path, name: str) -> Path:
    """Train ``name`` with ``dnnops train``; its run folder."""
    home = folder / "home"
    if name in IMAGES:
        size, side = IMAGES[name]
        photos = folder / f"photos-{name}"
        rng = np.random.default_rng(0)
        for shape in SHAPES:
            (photos / shape).mkdir(parents=True)
            for i in range(16):
                photo(shape, side, rng).save(photos / shape / f"{i}.jpg", quality=90)
        data = {"source": f"{photos}/", "target": "shape", "image": {"size": [size, size]}}
        model = {"arch": "resnet18", "params": {"width": 64}}
        train_section = {"epochs": 1, "batch_size": 16, "seed": 0}
    else:
        tickets_frame(2000).to_csv(folder / "tickets.csv", index=False)
        data = {"source": str(folder / "tickets.csv"), "target": "topic",
                "text": {"column": "ticket", "vocab_size": 2000, "max_length": 64}}  # fmt: skip
        model = {"arch": "text_transformer", "params": {"d_model": 64, "layers": 2}}
        train_section = {"epochs": 2, "batch_size": 64, "seed": 0}
    config = folder / f"{name}.yaml"
    project = {"name": name, "data": data, "model": model, "train": train_section,
               "evaluate": {"baseline": "trivial"}}  # fmt: skip
    config.write_text(yaml.safe_dump(project))
    done = subprocess.run(
        [str(BIN / "dnnops"), "train", "-c", str(config), "--quiet", "--json"],
        env={**os.environ, "DNNOPS_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"training {name} failed:\n{done.stderr[-2000:]}")
    return home / "runs" / str(json.loads(done.stdout)["run_id"])


def request_values(name: str, count: int) -> list[object]:
    """What clients send: JPEG bytes of unseen photos, or unseen tickets."""
    if name in IMAGES:
        rng = np.random.default_rng(1)
        side = IMAGES[name][1]
        return [jpeg(photo(SHAPES[i % 3], side, rng)) for i in range(count)]
    return list(tickets_frame(count, seed=1)["ticket"])


def wrk_script(folder: Path, name: str, value: object) -> Path:
    instance = {"b64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value
    body = folder / f"{name}.json"
    body.write_text(json.dumps({"instances": [instance]}))
    script = folder / f"{name}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{body}", "r")\nwrk.body = f:read("*all")\nf:close()\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def offline_limit(
    home: Path, name: str, values: list[object], *, batch_size: int = OFFLINE_BATCH
) -> float:
    """Instances/s of decode + preprocessing + the served ONNX graph at ``batch_size``, in
    one process on every core: at 32 the machine's own ceiling for this model; at 1 what
    it gives without batching (their ratio bounds what batching can add)."""
    seconds = 5.0
    registry = open_registry(resolve_home(home))
    loaded = load_version(registry, registry.resolve_ref(f"{name}@1"))
    medium = loaded.preprocessor.medium
    assert medium is not None
    graph = OnnxRunner(loaded.graph)
    batch = pd.DataFrame({medium.name: pd.Series(values[:batch_size], dtype=object)})
    graph.run_all(apply_preprocessing(loaded.preprocessor, batch, inference=True))
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        graph.run_all(apply_preprocessing(loaded.preprocessor, batch, inference=True))
        runs += 1
    return runs * batch_size / (time.perf_counter() - started)


def serve(kind: str, name: str, home: Path, run: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DNNOPS_HOME": str(home), "BENCH_RUN": str(run),
           "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                       str(HERE / "apps")]))}  # fmt: skip
    if kind == "dnnops":
        command = [str(BIN / "dnnops"), "serve", "--model", f"{name}@1", "--port", str(port)]
        path = f"/v1/models/{name}:predict"
    else:
        command = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
                   "--log-level", "warning", "fastapi_media:app"]  # fmt: skip
        path = "/predict"
    process = subprocess.Popen(
        command, env=env, cwd=HERE / "apps", stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    wait_for_port(port, process)
    if kind == "dnnops":
        wait_until_ready(f"http://127.0.0.1:{port}/v2/health/ready", process)
    time.sleep(0.5)
    return process, f"http://127.0.0.1:{port}{path}"


SERVERS = ("dnnops", "fastapi")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="img64,img224,text")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name in args.models.split(","):
            run = train(folder, name)
            values = request_values(name, OFFLINE_BATCH)
            script = wrk_script(folder, name, values[0])
            limits: list[float] = []
            singles: list[float] = []
            figures: dict[str, list[dict[str, float]]] = {kind: [] for kind in SERVERS}
            for _ in range(args.rounds):  # alternated: this machine is shared and noisy
                limits.append(offline_limit(folder / "home", name, values))
                singles.append(offline_limit(folder / "home", name, values, batch_size=1))
                for kind in SERVERS:
                    process, url = serve(kind, name, folder / "home", run)
                    try:
                        run_wrk(url, script, args.concurrency, 2.0, process.pid)  # warm-up
                        figures[kind].append(
                            run_wrk(url, script, args.concurrency, args.duration, process.pid)
                        )
                    finally:
                        os.killpg(process.pid, signal.SIGTERM)
                        process.wait(timeout=60)
            rows.append((name, statistics.median(limits), statistics.median(singles), figures))
    print(
        f"\nc={args.concurrency}, {args.duration:g} s each, medians of {args.rounds} rounds, "
        f"one request = one instance\n"
        f"{'model':<8}{'server':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'cpu ms/req':>12}"
    )
    verdict = True
    for name, limit, single, figures in rows:
        rps = {}
        for kind, runs in figures.items():
            rps[kind] = statistics.median(f["rps"] for f in runs)
            cpu = statistics.median(
                f["server_cpu_s"] * 1000 / (f["rps"] * args.duration) for f in runs
            )
            print(
                f"{name:<8}{kind:<12}{rps[kind]:>9.1f}"
                f"{statistics.median(f['p50_ms'] for f in runs):>9.1f}"
                f"{statistics.median(f['p99_ms'] for f in runs):>9.1f}"
                f"{sum(f['non_2xx'] for f in runs):>9.0f}{cpu:>12.2f}"
            )
        share, ratio = rps["dnnops"] / limit, rps["dnnops"] / rps["fastapi"]
        ok = share >= 0.7 and ratio >= 2.0
        verdict &= ok
        print(
            f"{name}: offline {limit:.1f}/s at batch {OFFLINE_BATCH}, {single:.1f}/s at "
            f"batch 1; dnnops {share:.0%} of the limit, {ratio:.2f}x FastAPI: "
            f"{'PASS' if ok else 'FAIL'}"
        )
    print("verdict:", "PASS" if verdict else "FAIL", "(>= 70% of the limit, >= 2x FastAPI)")


if __name__ == "__main__":
    main()
