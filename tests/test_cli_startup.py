"""Commands that only read metadata or logs start without torch, onnxruntime or pandas."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dnnops
from tests.conftest import subprocess_env

PROBE = """
import json, sys
from dnnops.cli import main
sys.argv = ["dnnops", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("torch", "onnxruntime", "onnx", "pandas", "sklearn") if m in sys.modules]
print("HEAVY=" + json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command", [["--help"], ["--version"], ["models", "list"], ["runs", "list"], ["logs", "show"]]
)
def test_light_commands_import_no_heavy_library(tmp_path: Path, command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *command],
        env=subprocess_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("HEAVY="))
    assert json.loads(line.removeprefix("HEAVY=")) == [], result.stderr


def test_version_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dnnops", "--version"],
        env=subprocess_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    installed = importlib.metadata.version("dnnops")  # pyproject.toml's, the one source
    assert result.stdout.strip() == f"dnnops {installed}"
    assert dnnops.__version__ == installed


def test_the_server_starts_without_torch_scipy_or_scikit_learn(tmp_path: Path) -> None:
    """A server serves ONNX graphs: torch, SciPy and scikit-learn cost its start (and each
    worker's) three seconds here and are needed only by training and the agreement
    panel's fitting."""
    probe = (
        "import json, sys\n"
        "import dnnops.serve.app, dnnops.serve.launch, dnnops.serve.worker\n"
        "heavy = [m for m in ('torch', 'scipy', 'sklearn') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=subprocess_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
