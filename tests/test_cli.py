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
