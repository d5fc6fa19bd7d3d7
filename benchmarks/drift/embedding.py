"""Embedding drift side by side: dnnops's test (an RBF kernel's unbiased MMD, a permutation
null from one matrix product; ``monitor/stats/embedding_drift.py``) against alibi-detect's
``MMDDrift`` (the same statistic, its own permutation loop) on the same windows.

A small ResNet is trained with ``dnnops train`` on scikit-learn's digits drawn as photos
(``dnnops.example_data``), digits 0-8 only, with a share of each class's files kept out of
training. Its served graph embeds those kept-out photos as they are (no change), darkened,
blurred, and mixed with the digit 9 it never saw (a new class). Each scenario is
``--windows`` windows of ``--rows`` embeddings; both tools get the version's reference
rows (its held-out split, up to 500 kept in ``embeddings.json``) and the same
significance level (dnnops reads its null from 200 permutations, alibi-detect from
``--permutations``). A window here is within a report's sample (``WINDOW_ROWS``), so dnnops
tests every row of it, as a report on such a window does. alibi-detect runs from its own venv:
``bash benchmarks/drift/setup_venvs.sh alibi-detect`` then
``benchmarks/drift/.venvs/alibi-detect/bin/pip install torch==2.13.0``.

    .venv/bin/python benchmarks/drift/embedding.py [--windows 20] [--rows 200]

Verdict (issue 30): at least alibi-detect's detections, no more false alarms, and at
least 10x faster per window.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image, ImageFilter

from dnnops.data.embedding_profile import EmbeddingProfile
from dnnops.data.preprocess import Preprocessor, apply_preprocessing
from dnnops.example_data import write_digit_photos
from dnnops.home import resolve_home
from dnnops.monitor.stats.embedding_drift import embedding_drift
from dnnops.registry.loader import load_version
from dnnops.registry.onnx_runner import OnnxRunner
from dnnops.registry.open import open_registry

HERE = Path(__file__).resolve().parent
ALIBI = HERE / ".venvs" / "alibi-detect" / "bin" / "python"
NEW_CLASS = "9"
NEW_SHARE = 0.3
KEPT_OUT = 0.4


def photos(root: Path) -> tuple[Path, list[Path], list[Path]]:
    """A training folder of digits 0-8, the kept-out files of 0-8, and every 9."""
    everything = root / "all"
    write_digit_photos(everything)
    train = root / "train"
    rng = np.random.default_rng(0)
    kept_out, new = [], sorted((everything / NEW_CLASS).glob("*.png"))
    for folder in sorted(everything.iterdir()):
        if folder.name == NEW_CLASS:
            continue
        files = sorted(folder.glob("*.png"))
        held = set(rng.choice(len(files), int(len(files) * KEPT_OUT), replace=False).tolist())
        (train / folder.name).mkdir(parents=True)
        for index, path in enumerate(files):
            if index in held:
                kept_out.append(path)
            else:
                shutil.copy(path, train / folder.name / path.name)
    return train, kept_out, new


def train(root: Path, folder: Path, epochs: int) -> None:
    project = {
        "name": "digits",
        "data": {"source": f"{folder}/", "target": "digit",
                 "image": {"size": [32, 32], "channels": 1}},
        "model": {"arch": "resnet18", "params": {"width": 8, "small_input": True}},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.003, "seed": 0},
        "evaluate": {"baseline": "trivial"},
    }  # fmt: skip
    config = root / "dnnops.yaml"
    config.write_text(yaml.safe_dump(project))
    env = dict(os.environ, DNNOPS_HOME=str(root / "home"))
    command = [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-2000:]}")
    accuracy = json.loads(done.stdout)["metrics"]["test_accuracy"]
    print(f"trained a ResNet on digits 0-8: test accuracy {accuracy:.3f}")


def embed(graph: OnnxRunner, pre: Preprocessor, images: list[bytes]) -> np.ndarray:
    """The served graph's embeddings of encoded images (its second output)."""
    medium = pre.medium
    assert medium is not None
    frame = pd.DataFrame({medium.name: pd.Series(images, dtype=object)})
    x = apply_preprocessing(pre, frame, inference=True)
    embeddings: np.ndarray = graph.run_all(x)[1].astype("float64")
    return embeddings


def as_png(path: Path, change: str) -> bytes:
    image = Image.open(path).convert("L")
    if change == "darker":
        image = image.point(lambda v: int(v * 0.6))
    elif change == "blur":
        image = image.filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def windows(
    pools: dict[str, np.ndarray], new: np.ndarray, *, count: int, rows: int
) -> dict[str, np.ndarray]:
    """``count`` windows of ``rows`` embeddings per scenario, drawn with a fixed seed."""
    rng = np.random.default_rng(1)
    out: dict[str, list[np.ndarray]] = {name: [] for name in (*pools, "new_class")}
    for _ in range(count):
        for name, pool in pools.items():
            out[name].append(pool[rng.choice(len(pool), rows, replace=False)])
        newcomers = int(rows * NEW_SHARE)
        mixed = np.concatenate([
            pools["none"][rng.choice(len(pools["none"]), rows - newcomers, replace=False)],
            new[rng.choice(len(new), newcomers, replace=False)],
        ])  # fmt: skip
        out["new_class"].append(mixed)
    return {name: np.stack(found) for name, found in out.items()}


def dnnops_verdicts(
    profile: EmbeddingProfile, scenario: np.ndarray, alpha: float
) -> tuple[list[bool], list[float]]:
    flagged, seconds = [], []
    for window in scenario:
        started = time.perf_counter()
        found = embedding_drift(profile, window.tolist(), len(window), alpha=alpha)
        seconds.append(time.perf_counter() - started)
        flagged.append(bool(found and found.drifted))
    return flagged, seconds


def alibi_verdicts(
    reference: np.ndarray, scenarios: dict[str, np.ndarray], alpha: float, permutations: int,
    folder: Path,
) -> dict[str, tuple[list[bool], list[float]]] | None:  # fmt: skip
    if not ALIBI.exists():
        print(f"alibi-detect skipped: no {ALIBI} (see this script's docstring)")
        return None
    np.save(folder / "reference.npy", reference)
    np.savez(folder / "windows.npz", **scenarios)  # type: ignore[arg-type]  # the stub lacks **kwds
    done = subprocess.run(
        [str(ALIBI), str(HERE / "tools" / "run_alibi_mmd.py"), str(folder / "reference.npy"),
         str(folder / "windows.npz"), str(alpha), str(permutations)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            found = json.loads(line)
            out[found["scenario"]] = (found["flagged"], found["seconds"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--tools", nargs="+", default=["dnnops", "alibi-detect"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder, kept_out, new_files = photos(root)
        train(root, folder, args.epochs)
        registry = open_registry(resolve_home(root / "home"))
        loaded = load_version(registry, registry.resolve_ref("digits@1"))
        profile = loaded.embedding
        assert profile is not None, "an image version stores its reference embeddings"
        graph = OnnxRunner(loaded.graph)
        pools = {
            change: embed(graph, loaded.preprocessor, [as_png(p, change) for p in kept_out])
            for change in ("none", "darker", "blur")
        }
        new = embed(graph, loaded.preprocessor, [as_png(p, "none") for p in new_files])
        rows = min(args.rows, len(kept_out))
        scenarios = windows(pools, new, count=args.windows, rows=rows)
        ours = {name: dnnops_verdicts(profile, w, args.alpha) for name, w in scenarios.items()}
        theirs = None
        if "alibi-detect" in args.tools:
            reference = np.asarray(profile.sample)
            if len(reference) < profile.rows:
                print(
                    f"note: alibi-detect gets {len(reference)} of the {profile.rows} reference rows"
                )
            theirs = alibi_verdicts(reference, scenarios, args.alpha, args.permutations, root)
    print(
        f"\n{args.windows} windows of {rows} embeddings ({profile.dims} dims) per scenario, "
        f"alpha {args.alpha}, reference {profile.rows} rows"
    )
    print(_line(["scenario", "dnnops", "alibi", "dnnops ms", "alibi ms", "faster"]))
    verdict = theirs is not None
    for name, (flagged, seconds) in ours.items():
        ms = statistics.median(seconds) * 1000
        found = theirs.get(name) if theirs is not None else None
        if found is None:
            print(_line([name, f"{sum(flagged)}/{len(flagged)}", "-", f"{ms:.3f}", "-", "-"]))
            continue
        other, other_seconds = found
        other_ms = statistics.median(other_seconds) * 1000
        cells = [name, f"{sum(flagged)}/{len(flagged)}", f"{sum(other)}/{len(other)}"]
        print(_line([*cells, f"{ms:.3f}", f"{other_ms:.1f}", f"{other_ms / ms:.0f}x"]))
        if name == "none":
            verdict &= sum(flagged) <= sum(other)
        else:
            verdict &= sum(flagged) >= sum(other)
        verdict &= other_ms / ms >= 10
    if theirs is not None:
        print(
            "verdict:",
            "PASS" if verdict else "FAIL",
            "(at least alibi-detect's detections, no more false alarms, 10x faster)",
        )


def _line(cells: list[str]) -> str:
    return f"{cells[0]:<11}" + "".join(f"{c:>11}" for c in cells[1:])


if __name__ == "__main__":
    main()
