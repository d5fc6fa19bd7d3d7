"""The report child's memory under a growing log, with pymalloc and with glibc's malloc.

The soak (issue 15) found the server's report child growing ~3.4 MB a minute while the
serving process stayed flat, with ``tracemalloc`` flat. This benchmark isolates it: for
each allocator, one process writes prediction records (``--rate`` a second, the digits
MLP's rows, segments rotated every minute) while another builds the server's monitoring
report every 15 s exactly as the report child does (``build_in_child``, window 5 min), and
reads after each report its anonymous RSS, glibc's heap in use (``mallinfo2``) and, under
pymalloc, the number of 1 MiB arenas and the bytes of the objects in them. The two
allocators run at the same time on copies of one trained home, so they see the same
machine.

    .venv/bin/python benchmarks/monitor/report_memory.py [--minutes 15] [--rate 4000]

Prints, per allocator, the RSS after the window has filled and at the end, the growth per
minute, the arenas and the median time of a report. Verdict: the child's allocator
(``PYTHONMALLOC=malloc``, see ``dnnops.serve.report_worker``) stays within 10% after the
window filled. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BIN = Path(sys.executable).parent
PROJECT = """name: digits
data: {source: "builtin:digits", preprocessing: {numeric: scale}}
model: {arch: mlp, params: {hidden: [64], dropout: 0.0}}
train: {epochs: 5, lr: 0.005, seed: 1}
slo:
  objectives:
    - {name: fast, kind: latency, target: 0.99, threshold: 50ms}
    - {name: available, kind: success_rate, target: 0.999}
monitor: {evaluate_every: 60s, window: 5m}
"""
WINDOW_S = 300.0
EVERY_S = 15.0
ALLOCATORS = {"pymalloc": None, "malloc": "malloc"}


class MallInfo(ctypes.Structure):
    """glibc's ``struct mallinfo2``: ``uordblks`` is the heap in use."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def digits_records(rng: np.random.Generator, prefix: str, first: int, *, ts: float) -> list[bytes]:
    """64 records as the server logs a batch of digits rows with probabilities."""
    from dnnops.predlog.records import RequestContext, prediction_records

    probabilities = rng.dirichlet(np.ones(10), 64)
    context = RequestContext(
        "digits", "v2", "digits", "1", latency_ms=float(rng.gamma(2, 1.5)), cpu_ms=0.01
    )
    return prediction_records(
        [f"{prefix}{first + i:x}" for i in range(64)],
        context,
        ts=ts,
        inputs=rng.integers(0, 16, (64, 64)).tolist(),
        outputs=probabilities.argmax(1).tolist(),
        probabilities=probabilities.tolist(),
    )


def write_log(home: Path, rate: int, stop: Any) -> None:
    """Records as the server logs them: batches of 64 digits rows with probabilities."""
    from dnnops.predlog.writer import RotationPolicy, SegmentWriter

    writer = SegmentWriter(
        home / "logs" / "predictions", "predictions", RotationPolicy(max_age_s=60)
    ).start()
    rng = np.random.default_rng(0)
    prefix, count = os.urandom(4).hex(), 0
    while not stop.is_set():
        started = time.time()
        for _ in range(max(rate // 64 // 4, 1)):
            writer.append(digits_records(rng, f"{prefix}-", count, ts=time.time()))
            count += 64
        time.sleep(max(0.0, 0.25 - (time.time() - started)))
    writer.close()


def anonymous_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pymalloc_arenas() -> tuple[int, float] | None:
    """(arenas allocated now, MB of objects in them); None without pymalloc."""
    with tempfile.TemporaryFile("w+") as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    arenas = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    if arenas is None or used is None:
        return None
    return int(arenas.group(1).replace(",", "")), int(used.group(1).replace(",", "")) / 2**20


def reporter(
    home: Path, config: Path, minutes: float, rate: int, *, window_s: float, every_s: float
) -> None:
    """The child's loop: a report every 15 s while the log grows; one JSON line each."""
    from dnnops.config import load_config
    from dnnops.home import resolve_home
    from dnnops.serve.report_worker import ReportJob, build_in_child

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    writer = context.Process(target=write_log, args=(home, rate, stop))
    writer.start()
    project = load_config(config)
    job = ReportJob(resolve_home(home), window_s, project.monitor, project.slo)
    began = time.time()
    try:
        while time.time() - began < minutes * 60:
            started = time.time()
            build_in_child(job)
            took = time.time() - started
            arenas = pymalloc_arenas()
            line = {
                "minute": (time.time() - began) / 60,
                "took_s": took,
                "rss_mb": anonymous_rss_mb(),
                "heap_mb": libc.mallinfo2().uordblks / 2**20,
                "arenas": arenas[0] if arenas else None,
                "objects_mb": arenas[1] if arenas else None,
            }
            print(json.dumps(line), flush=True)
            time.sleep(max(0.0, every_s - (time.time() - started)))
    finally:
        stop.set()
        writer.join()


@dataclass(frozen=True)
class Summary:
    allocator: str
    settled_mb: float
    """Median RSS of the first three reports after the window filled."""
    end_mb: float
    """Median RSS of the last three reports."""
    per_minute_mb: float
    arenas: str
    report_s: float

    @property
    def growth(self) -> float:
        return self.end_mb / self.settled_mb - 1.0


def summarise(
    allocator: str, lines: list[dict[str, Any]], *, window_s: float, every_s: float
) -> Summary:
    """Settled: four reports after the window first filled (a minute at the defaults)."""
    settled = [line for line in lines if line["minute"] > (window_s + 4 * every_s) / 60]
    if len(settled) < 6:
        raise SystemExit(f"{allocator}: too few reports after the window filled: more --minutes")
    first, last = settled[:3], settled[-3:]
    start = statistics.median(line["rss_mb"] for line in first)
    end = statistics.median(line["rss_mb"] for line in last)
    span = statistics.median(line["minute"] for line in last) - statistics.median(
        line["minute"] for line in first
    )
    arenas = (
        f"{first[0]['arenas']} -> {last[-1]['arenas']} ({last[-1]['objects_mb']:.0f} MB in use)"
        if first[0]["arenas"] is not None
        else "-"
    )
    took = statistics.median(line["took_s"] for line in lines)
    return Summary(allocator, start, end, (end - start) / span, arenas, took)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=4000, help="records logged a second")
    parser.add_argument("--window-s", type=float, default=WINDOW_S, help="the report's window")
    parser.add_argument("--every-s", type=float, default=EVERY_S, help="seconds between reports")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    timing = {"window_s": args.window_s, "every_s": args.every_s}
    if args.child:
        reporter(Path(args.child[0]), Path(args.child[1]), args.minutes, args.rate, **timing)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config = folder / "dnnops.yaml"
        config.write_text(PROJECT)
        trained = folder / "trained"
        subprocess.run(
            [str(BIN / "dnnops"), "train", "-c", str(config), "--quiet"],
            env={**os.environ, "DNNOPS_HOME": str(trained)},
            check=True,
            capture_output=True,
        )
        runs = {}
        for name, value in ALLOCATORS.items():
            home = folder / name
            shutil.copytree(trained, home)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
            if value:
                env["PYTHONMALLOC"] = value
            runs[name] = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(home),
                    str(config),
                    "--minutes",
                    str(args.minutes),
                    "--rate",
                    str(args.rate),
                    "--window-s",
                    str(args.window_s),
                    "--every-s",
                    str(args.every_s),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        print(
            f"{args.minutes:g} minutes, {args.rate:,} records/s, a report every {args.every_s:g} s"
        )
        summaries = []
        for name, process in runs.items():
            output, _ = process.communicate()
            if process.returncode:
                raise SystemExit(f"{name}: the reporting process failed ({process.returncode})")
            summaries.append(
                summarise(name, [json.loads(line) for line in output.splitlines()], **timing)
            )
    print(
        f"{'allocator':<10}{'settled MB':>11}{'end MB':>9}{'growth':>8}{'MB/min':>8}"
        f"{'report s':>10}  pymalloc arenas"
    )
    for s in summaries:
        print(
            f"{s.allocator:<10}{s.settled_mb:>11.1f}{s.end_mb:>9.1f}{s.growth:>8.1%}"
            f"{s.per_minute_mb:>8.2f}{s.report_s:>10.2f}  {s.arenas}"
        )
    chosen = next(s for s in summaries if s.allocator == "malloc")
    verdict = "MET" if abs(chosen.growth) <= 0.10 else "MISSED"
    print(f"verdict: the report child's allocator within 10% after the window filled: {verdict}")


if __name__ == "__main__":
    main()
