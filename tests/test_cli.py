from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult


@pytest.mark.slow
def test_quickstart_trains_digits_above_95_percent(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("quickstart", "--quiet")
    assert result.code == 0, result.err
    assert "test_accuracy" in result.out
    runs = cli("runs", "list", "--json").json()
    assert len(runs) == 1
    assert runs[0]["status"] == "finished"
    assert runs[0]["metrics"]["test_accuracy"] >= 0.95
    run_dir = home / "runs" / runs[0]["id"]
    for name in (
        "config.yaml",
        "run.json",
        "model.safetensors",
        "data/schema.json",
        "data/preprocessing.json",
        "data/profile.json",
        "checkpoints/latest.json",
    ):
        assert (run_dir / name).is_file(), name


def test_help_lists_the_stages(cli: Callable[..., CliResult]) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("quickstart", "init", "data", "train", "runs"):
        assert command in result.out


def test_unknown_command_is_a_usage_error(cli: Callable[..., CliResult]) -> None:
    assert cli("frobnicate").code == 2
