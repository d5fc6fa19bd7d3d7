"""Drift detection side by side: dnnops against Evidently, NannyML, alibi-detect and a plain
numpy/scipy script, on the same Parquet windows, in one run.

Each tool runs as its own process from its own virtual environment
(``bash benchmarks/drift/setup_venvs.sh``; tools without one are skipped), timed and
measured whole (wall time and peak RSS from ``/usr/bin/time``), the way a user would run
it. The dnnops side is ``dnnops monitor drift REF CUR --method ks_wasserstein --json``.
Prints one row per tool, size and scenario with what it flagged, then per tool the median
time and memory over the scenarios and the true and false positives against the planted
truth.

    .venv/bin/python benchmarks/drift/run.py --rows 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from make_data import SCENARIOS, window  # noqa: E402

TRUTH = {
    "none": set(),
    "mean_shift": {"n00", "n01", "n02"},
    "variance": {"n03", "n04"},
    "category_permuted": {"c0"},
    "correlation": {"(multivariate)"},
}
TOOLS = {
    "dnnops": None,
    "numpy/scipy": (REPO / ".venv/bin/python", HERE / "tools/run_numpy_scipy.py"),
    "alibi-detect": (HERE / ".venvs/alibi-detect/bin/python", HERE / "tools/run_alibi_detect.py"),
    "nannyml": (HERE / ".venvs/nannyml/bin/python", HERE / "tools/run_nannyml.py"),
    "evidently": (HERE / ".venvs/evidently/bin/python", HERE / "tools/run_evidently.py"),
}


@dataclass
class Result:
    tool: str
    rows: int
    scenario: str
    seconds: float
    peak_mb: float
    flagged: set[str]
    error: str = ""


def command(tool: str, reference: Path, current: Path) -> list[str] | None:
    if tool == "dnnops":
        dnnops = REPO / ".venv/bin/dnnops"
        options = ["--method", "ks_wasserstein", "--json"]
        return [str(dnnops), "monitor", "drift", str(reference), str(current), *options]
    python, script = TOOLS[tool]  # type: ignore[misc]
    if not python.exists():
        return None
    return [str(python), str(script), str(reference), str(current)]


def run(tool: str, rows: int, scenario: str, reference: Path, current: Path) -> Result | None:
    argv = command(tool, reference, current)
    if argv is None:
        return None
    done = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", *argv], capture_output=True, text=True, timeout=3600
    )
    timing = re.findall(r"TIME ([\d.]+) (\d+)", done.stderr)
    seconds, peak_kb = (float(timing[-1][0]), float(timing[-1][1])) if timing else (0.0, 0.0)
    try:
        payload = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Result(tool, rows, scenario, seconds, peak_kb / 1024, set(), done.stderr[-300:])
    if tool == "dnnops":
        drift = payload["drift"]
        flagged = {f["feature"] for f in drift["features"] if f["drifted"]}
        if drift.get("multivariate") and drift["multivariate"]["drifted"]:
            flagged.add("(multivariate)")
    else:
        flagged = set(payload["flagged"])
    return Result(tool, rows, scenario, seconds, peak_kb / 1024, flagged)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS))
    args = parser.parse_args()
    results: list[Result] = []
    print(f"{'tool':<13} {'rows':>9} {'scenario':<18} {'s':>7} {'MB':>7}  flagged")
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as folder:
        for rows in args.rows:
            data = Path(folder) / str(rows)
            data.mkdir()
            window(rows, 0).to_parquet(data / "reference.parquet", index=False)
            for seed, scenario in enumerate(SCENARIOS, start=1):
                window(rows, seed, scenario).to_parquet(data / f"{scenario}.parquet", index=False)
            for scenario in SCENARIOS:
                for tool in args.tools:
                    found = run(
                        tool,
                        rows,
                        scenario,
                        data / "reference.parquet",
                        data / f"{scenario}.parquet",
                    )
                    if found is None:
                        continue
                    results.append(found)
                    shown = ", ".join(sorted(found.flagged)) or "-"
                    note = f"  ERROR {found.error.strip()[-120:]}" if found.error else ""
                    print(
                        f"{tool:<13} {rows:>9} {scenario:<18} {found.seconds:>7.2f} "
                        f"{found.peak_mb:>7.0f}  {shown}{note}",
                        flush=True,
                    )
    summarize(results)


def summarize(results: list[Result]) -> None:
    print("\nper tool and size: median over scenarios; true / false positives over all five")
    header = ["tool".ljust(13), "rows".rjust(9), "median s".rjust(9), "median MB".rjust(10)]
    print(" ".join([*header, "TP".rjust(4), "FP".rjust(4), "x dnnops s".rjust(11)]))
    for rows in sorted({r.rows for r in results}):
        ours = [r.seconds for r in results if r.rows == rows and r.tool == "dnnops"]
        base = statistics.median(ours) if ours else float("nan")
        for tool in TOOLS:
            mine = [r for r in results if r.rows == rows and r.tool == tool]
            if not mine:
                continue
            tp = sum(len(r.flagged & TRUTH[r.scenario]) for r in mine)
            fp = sum(len(r.flagged - TRUTH[r.scenario]) for r in mine)
            seconds = statistics.median(r.seconds for r in mine)
            memory = statistics.median(r.peak_mb for r in mine)
            print(
                f"{tool:<13} {rows:>9} {seconds:>9.2f} {memory:>10.0f} {tp:>4} {fp:>4} "
                f"{seconds / base:>11.1f}"
            )


if __name__ == "__main__":
    main()
