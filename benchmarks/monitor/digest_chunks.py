"""Digesting a prediction segment whole against in chunks: the memory a report needs.

A report digests each new stretch of the prediction log (``DigestStore``). Decoding a
record turns its inputs into Python objects (~2 KB for the digits' 64 numbers), so
decoding a whole segment at once needed memory in proportion to the segment; the soak
(issue 15) saw the report child reach ~1 GB for a moment every minute and keep some of
its pages. This writes one segment as the server logs it (digits rows with
probabilities, trained digits MLP as the reference), then digests it in a fresh process
per chunk size and prints the time, the peak RSS above the process's baseline, and the
anonymous RSS left after ``malloc_trim``; it checks that every chunk size gives the same
digest.

    .venv/bin/python benchmarks/monitor/digest_chunks.py [--records 160000]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_memory import BIN, PROJECT, anonymous_rss_mb, digits_records

WHOLE = 10**9
CHUNKS = (WHOLE, 50_000, 10_000, 2_000)


def write_segment(home: Path, records: int) -> None:
    """``records`` predictions in one segment, as the server logs them."""
    from dnnops.predlog.writer import RotationPolicy, SegmentWriter

    never = RotationPolicy(max_bytes=2**40, max_age_s=1e9)
    writer = SegmentWriter(home / "logs" / "predictions", "predictions", never).start()
    rng = np.random.default_rng(0)
    prefix = f"{os.urandom(4).hex()}-"
    now = time.time() - 120
    for start in range(0, records, 64):
        writer.append(digits_records(rng, prefix, start, ts=now + start / records * 60))
    writer.close()


def digest_once(home: Path, config: Path, chunk: int) -> dict[str, Any]:
    """In this (fresh) process: one digest of the segment, with its cost."""
    import dnnops.monitor.segments.digest_store as digest_store
    from dnnops.config import load_config
    from dnnops.home import resolve_home
    from dnnops.monitor.report import _Versions, latency_thresholds_ms
    from dnnops.monitor.report import digest_store as store_of
    from dnnops.monitor.segments.digest import digest_records
    from dnnops.predlog.reader import PREDICTIONS, segments
    from dnnops.registry.open import open_registry

    project = load_config(config)
    registry = open_registry(resolve_home(home))
    versions = _Versions(registry, {})
    versions.reference("digits", "1")  # loaded before the baseline is read
    thresholds = latency_thresholds_ms(project.slo)
    digest_store.CHUNK_RECORDS = chunk
    store = store_of(home / "logs", project.slo)
    (segment,) = segments(home / "logs" / PREDICTIONS, PREDICTIONS)
    with tempfile.TemporaryDirectory() as kept:  # a settled segment's digest: not for the next run
        store.folder = Path(kept)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        digest = store.digest(
            segment, lambda rs: digest_records(rs, versions.reference, thresholds)
        )
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    stats = sorted(digest.stats.items(), key=lambda item: item[0][1])
    return {
        "took_s": took,
        "peak_mb": peak - baseline,
        "left_mb": anonymous_rss_mb(),
        "requests": sum(s.requests for _, s in stats),
        "fingerprint": json.dumps(
            [[s.requests, s.numeric, s.classes, s.latency.to_json()] for _, s in stats]
            + [[len(r.ids), r.outputs.sum(dtype="float64")] for r in digest.rows.values()],
            sort_keys=True,
        ),
    }


def digest_in_child(home: Path, config: Path, chunk: int) -> dict[str, Any]:
    """``digest_once`` in a fresh process, on the report child's allocator."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(home), str(config), str(chunk)],
        env={**os.environ, "PYTHONMALLOC": "malloc"},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"digesting in chunks of {chunk} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=160_000, help="records in the segment")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("HOME", "CONFIG", "CHUNK"))
    args = parser.parse_args()
    if args.child:
        home, config, chunk = args.child
        print(json.dumps(digest_once(Path(home), Path(config), int(chunk))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        home, config = Path(scratch) / "home", Path(scratch) / "dnnops.yaml"
        config.write_text(PROJECT)
        subprocess.run(
            [str(BIN / "dnnops"), "train", "-c", str(config), "--quiet"],
            env={**os.environ, "DNNOPS_HOME": str(home)},
            check=True,
            capture_output=True,
        )
        write_segment(home, args.records)
        size = sum(p.stat().st_size for p in (home / "logs" / "predictions").iterdir())
        print(
            f"one segment of {args.records:,} records ({size / 2**20:.0f} MB), PYTHONMALLOC=malloc"
        )
        print(f"{'chunk':>10}{'digest s':>10}{'peak MB':>9}{'left MB':>9}  same digest")
        reference = None
        for chunk in CHUNKS:
            runs = [digest_in_child(home, config, chunk) for _ in range(args.repeat)]
            reference = reference or runs[0]["fingerprint"]
            same = all(r["fingerprint"] == reference for r in runs)
            print(
                f"{'whole' if chunk == WHOLE else f'{chunk:,}':>10}"
                f"{statistics.median(r['took_s'] for r in runs):>10.2f}"
                f"{statistics.median(r['peak_mb'] for r in runs):>9.0f}"
                f"{statistics.median(r['left_mb'] for r in runs):>9.0f}  {same}"
            )


if __name__ == "__main__":
    main()
