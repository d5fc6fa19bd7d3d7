"""The monitoring report over days of traffic: cold (every segment digested), warm (the
digests kept on disk), and the floor it replaces (parsing every record once).

Trains the built-in wine model into a scratch home, writes ``--days`` of prediction
records (one segment an hour) plus labels for a tenth of them a minute later (one feedback
segment an hour); the newest segment of each is touched before every step, as if still
being written. Runs each step as its own process under ``/usr/bin/time``, as a user would:

    .venv/bin/python benchmarks/monitor/report.py --records 200000 --repeat 3
    .venv/bin/python benchmarks/monitor/report.py --days 30 --records 10000000 --repeat 1

Every report reads the whole SLO window (30 days) for its budgets, whatever its own
window. Prints wall time and peak RSS per step (medians over the repeats), the ratios,
and the verdict on issue 15's target: with 30 days of 10M records and their digests kept,
a report answers in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from sklearn.datasets import load_wine

from dnnops.predlog.frames import encode_frame

REPO = Path(__file__).resolve().parents[2]
DNNOPS = str(REPO / ".venv/bin/dnnops")
PROJECT = """name: wine
data: {source: "builtin:wine", preprocessing: {numeric: standardize}}
model: {arch: mlp, params: {hidden: [16], dropout: 0.0}}
train: {epochs: 3, batch_size: 32, lr: 0.01, seed: 1}
slo:
  objectives:
    - {name: fast, kind: latency, target: 0.99, threshold: 50ms}
    - {name: available, kind: success_rate, target: 0.999}
    - {name: accurate, kind: accuracy, target: 0.9}
"""
PARSE_ALL = (
    "import sys; from pathlib import Path; from dnnops.predlog.reader import read_records;"
    "records = list(read_records(Path(sys.argv[1]), 'predictions')); print(len(records))"
)


TARGET_S = 5.0
"""Issue 15: a report over a 30-day window of 10M records, digests kept."""


def write_days(logs: Path, records: int, now: float, days: int) -> None:
    """``records`` predictions spread over the ``days`` before ``now``, one segment an hour."""
    rng = np.random.default_rng(0)
    wine = load_wine(as_frame=True).frame.drop(columns=["target"])
    rows = wine.to_dict(orient="records")
    (logs / "predictions").mkdir(parents=True)
    (logs / "feedback").mkdir(parents=True)
    hours = 24 * days
    per_hour = records // hours
    labels = []
    for hour in range(hours):
        start = now - hours * 3600 + hour * 3600
        frames = []
        for i in range(per_hour):
            ts = start + i * 3600 / per_hour
            probabilities = rng.dirichlet([4, 1, 1]).tolist()
            pid = f"h{hour}-{i}"
            frames.append(
                encode_frame(
                    orjson.dumps(
                        {
                            "id": pid,
                            "ts": ts,
                            "endpoint": "wine",
                            "model": "wine",
                            "version": "1",
                            "latency_ms": float(rng.gamma(2, 3)),
                            "model_ms": float(rng.gamma(2, 1)),
                            "cpu_ms": 0.4,
                            "status": 200 if rng.random() > 0.001 else 503,
                            "inputs": rows[i % len(rows)],
                            "output": 0,
                            "probabilities": probabilities,
                        }
                    )
                )
            )
            if i % 10 == 0:
                labels.append(
                    encode_frame(orjson.dumps({"prediction_id": pid, "label": 0, "ts": ts + 60}))
                )
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start))
        segment = logs / "predictions" / f"predictions-{stamp}-{hour:06d}-bench.log"
        segment.write_bytes(b"".join(frames))
        written = min(start + 3600, now)  # the last hour's segment is the live one
        os.utime(segment, (written, written))
        # the labels arrive a minute after their predictions, in hourly segments too
        feedback = logs / "feedback" / f"feedback-{stamp}-{hour:06d}-bench.log"
        feedback.write_bytes(b"".join(labels))
        labels.clear()
        os.utime(feedback, (min(written + 60, now), min(written + 60, now)))


def touch_live(logs: Path) -> None:
    """The newest prediction and feedback segments are being written as the report runs."""
    for log in ("predictions", "feedback"):
        newest = sorted((logs / log).glob(f"{log}-*.log"))[-1]
        os.utime(newest)


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    peak_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])  # type: ignore[index]
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, help="a folder to write the traffic to once and reuse after"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.keep or Path(temporary)
        home = scratch / "home"
        config = scratch / "dnnops.yaml"
        env = {**os.environ, "DNNOPS_HOME": str(home)}
        if not (home / "logs").is_dir():
            config.write_text(PROJECT)
            subprocess.run([DNNOPS, "train", "-c", str(config), "--quiet"], env=env, check=True)
            write_days(home / "logs", args.records, time.time(), args.days)
        digests = home / "logs" / "digests"
        report = [DNNOPS, "monitor", "report", "-c", str(config), "--json", "--since"]
        floor_fits = args.records <= 2_000_000
        parse_all = [sys.executable, "-c", PARSE_ALL, str(home / "logs/predictions")]
        steps = {
            # above a few million records the floor would hold them all in memory
            **({"parse every record (floor)": (parse_all, False)} if floor_fits else {}),
            "report 24h, cold": ([*report, "24h"], True),
            "report 24h, digests kept": ([*report, "24h"], False),
            "report 1h, digests kept": ([*report, "1h"], False),
        }  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
        for _ in range(args.repeat):
            for name, (command, cold) in steps.items():
                if cold:
                    subprocess.run(["rm", "-rf", str(digests)], check=True)
                touch_live(home / "logs")
                results[name].append(measured(command, env))
    print(f"\n{args.records:,} records over {args.days} day(s), median of {args.repeat}\n")
    print(f"{'step':32} {'wall s':>8} {'peak MB':>8}")
    medians = {}
    for name, runs in results.items():
        medians[name] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        print(f"{name:32} {medians[name][0]:8.2f} {medians[name][1]:8.0f}")
    warm = medians["report 24h, digests kept"][0]
    if "parse every record (floor)" in medians:
        floor = medians["parse every record (floor)"][0]
        print(f"\nwarm 24h report / parsing every record: {warm / floor:.2f}x the time")
    if args.days >= 30:
        verdict = "met" if warm < TARGET_S else "MISSED"
        window = f"{args.days}-day window, digests kept"
        print(f"{window}: {warm:.2f} s (target < {TARGET_S:g} s): {verdict}")


if __name__ == "__main__":
    main()
