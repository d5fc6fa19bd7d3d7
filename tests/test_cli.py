from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import CliResult


@pytest.mark.slow
def test_help_lists_the_stages(cli: Callable[..., CliResult]) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("quickstart", "init", "data", "train", "runs"):
        assert command in result.out


def test_unknown_command_is_a_usage_error(cli: Callable[..., CliResult]) -> None:
    assert cli("frobnicate").code == 2


def test_every_command_and_group_answers_help(cli: Callable[..., CliResult]) -> None:
    from dnnops.cli import COMMANDS

    top = cli("--help")
    for name in COMMANDS:
        assert name in top.out
        result = cli(name, "--help")
        assert result.code == 0, (name, result.err)
    pairs = [("slo", "status"), ("logs", "show"), ("rollout", "abort"), ("export", "grafana")]
    for group, command in [*pairs, ("monitor", "drift"), ("runs", "show")]:
        assert command in cli(group, "--help").out
        assert cli(group, command, "--help").code == 0
