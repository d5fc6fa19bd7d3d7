"""Every benchmark's smoke mode: tiny sizes, one round, dnnops only (no peers' venvs), so
an interface change breaks ``make test`` instead of the next measurement.

    .venv/bin/python benchmarks/smoke.py [NAME ...]

Each script runs in its own process with the arguments below and must exit 0 and print
its table. The figures are not measurements: sizes this small say nothing about speed.
Scripts that need a tool this machine lacks (``wrk``, PostgreSQL's ``initdb``) are
listed as skipped, with the tool, unless ``DNNOPS_REQUIRE_ALL_TESTS`` is set (CI), where
a missing tool fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Smoke:
    script: str
    args: tuple[str, ...]
    needs: tuple[str, ...] = ()
    """Executables the script drives (``wrk``, ``initdb``)."""


SMOKES = {
    "train_overhead": Smoke("train_overhead.py", ("--rows", "2000", "--repeats", "1")),
    "time_to_model": Smoke(
        "time_to_model.py", ("--rounds", "1", "--rows", "2000", "--epochs", "1")
    ),
    "defaults_vs_gbm": Smoke(
        "defaults_vs_gbm.py", ("--tables", "generated", "--only", "penguins", "--preset", "fast")
    ),
    "tiers": Smoke("tiers.py", ("--repeat", "1", "--epochs", "2")),
    "batch_predict": Smoke("batch/predict.py", ("--rows", "5000", "--no-ray")),
    "cli_startup": Smoke("cli/startup.py", ("--repeat", "1")),
    "drift": Smoke("drift/run.py", ("--rows", "2000", "--tools", "dnnops")),
    "embedding_drift": Smoke(
        "drift/embedding.py", ("--windows", "2", "--epochs", "1", "--tools", "dnnops")
    ),
    "monitor_report": Smoke("monitor/report.py", ("--records", "3000", "--repeat", "1")),
    "monitor_estimate": Smoke(
        "monitor/estimate.py",
        (
            "--window",
            "200",
        ),
    ),
    "digest_chunks": Smoke("monitor/digest_chunks.py", ("--records", "6000", "--repeat", "1")),
    "report_memory": Smoke(
        "monitor/report_memory.py",
        ("--minutes", "0.3", "--rate", "200", "--window-s", "3", "--every-s", "1"),
    ),
    "serving": Smoke(
        "serving/run.py",
        ("--duration", "1", "--models", "small", "--servers", "dnnops", "--concurrency", "4"),
        needs=("wrk",),
    ),
    "serving_tabular": Smoke(
        "serving/tabular.py", ("--duration", "1", "--concurrency", "4"), needs=("wrk",)
    ),
    "explain_overhead": Smoke(
        "serving/explain_overhead.py",
        ("--rate", "50", "--seconds", "2", "--rounds", "1"),
        needs=("wrk",),
    ),
    "loadtest_agreement": Smoke(
        "serving/loadtest_agreement.py",
        ("--rounds", "1", "--duration", "1", "--concurrency", "4"),
        needs=("wrk",),
    ),
    "encrypted_logs": Smoke(
        "serving/encrypted_logs.py",
        ("--rounds", "1", "--seconds", "1", "--concurrency", "4"),
        needs=("wrk",),
    ),
    "grpc_vs_http": Smoke(
        "serving/grpc_vs_http.py", ("--rounds", "1", "--seconds", "1", "--clients", "1")
    ),
    "registry_over_http": Smoke("registry_over_http.py", ("--rounds", "1", "--mb", "1")),
    "soak": Smoke("soak.py", ("--minutes", "1"), needs=("wrk",)),
    "fleet": Smoke("fleet.py", ("--rounds", "1", "--kills", "1", "--leases", "2"), needs=("wrk",)),
    "gpu_check": Smoke("gpu_check.py", ("--quick",)),
}


def missing_tools(smoke: Smoke) -> list[str]:
    return [tool for tool in smoke.needs if shutil.which(tool) is None]


def run(name: str, smoke: Smoke) -> tuple[str, float, str]:
    """(status, seconds, the output's last line or the failure's tail)."""
    lacking = missing_tools(smoke)
    if lacking:
        status = "FAILED" if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") else "skipped"
        return status, 0.0, f"needs {', '.join(lacking)}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / smoke.script), *smoke.args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return "FAILED", seconds, " | ".join(tail) or f"exit {done.returncode}, no output"
    return "ok", seconds, lines[-1][:90]


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(SMOKES))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {sorted(SMOKES)}", file=sys.stderr)
        return 2
    chosen = names or list(SMOKES)
    failed = 0
    print(f"{'benchmark':<20}{'status':<9}{'s':>6}  last line")
    for name in chosen:
        status, seconds, detail = run(name, SMOKES[name])
        failed += status == "FAILED"
        print(f"{name:<20}{status:<9}{seconds:>6.1f}  {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
