from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dnnops.config import load_config, parse_config
from dnnops.durations import format_duration, parse_duration
from dnnops.errors import ConfigError
from dnnops.examples import DATA, EXAMPLES
from tests.conftest import CliResult, write_project

BASE = {"name": "p", "data": {"source": "builtin:wine"}}


def _error(raw: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return str(caught.value)


def test_impossible_value_names_the_key_path_and_the_rule() -> None:
    message = _error({**BASE, "train": {"epochs": -1}})
    assert "train.epochs" in message
    assert "greater than or equal to 1" in message
    assert "-1" in message


def test_unknown_key_lists_allowed_keys_and_the_closest_match() -> None:
    message = _error({**BASE, "train": {"epohcs": 3}})
    assert "train.epohcs: unknown key" in message
    assert "did you mean 'epochs'" in message
    assert "batch_size" in message


def test_wrong_type_in_a_list_names_the_index() -> None:
    message = _error({**BASE, "evaluate": {"gates": [{"metric": "accuracy", "min": "high"}]}})
    assert "evaluate.gates[0].min" in message


def test_every_error_is_reported_at_once() -> None:
    message = _error(
        {**BASE, "train": {"epochs": 0, "batch_size": 0}, "serve": {"max_delay": "soon"}}
    )
    assert "train.epochs" in message
    assert "train.batch_size" in message
    assert "serve.max_delay" in message


def test_architecture_parameters_are_checked_against_the_architecture() -> None:
    message = _error({**BASE, "model": {"arch": "mlp", "params": {"hiden": [3]}}})
    assert "model.params.hiden: unknown key" in message
    assert "did you mean 'hidden'" in message
    message = _error(
        {**BASE, "model": {"arch": "transformer", "params": {"d_model": 30, "heads": 4}}}
    )
    assert "divisible" in message


def test_unknown_builtin_and_unknown_extension_are_refused() -> None:
    assert "builtin:digits" in _error({"name": "p", "data": {"source": "builtin:mnist"}})
    assert ".csv" in _error({"name": "p", "data": {"source": "data.xlsx"}})


def test_split_fractions_must_add_up() -> None:
    message = _error({**BASE, "data": {"source": "builtin:wine", "split": {"train": 0.5}}})
    assert "add up to 1.0" in message


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("3d", 259200)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_checkpoint_interval_accepts_epochs_and_steps() -> None:
    steps = parse_config(
        {**BASE, "train": {"checkpoint_every": "200 steps"}}
    ).train.checkpoint_every
    assert (steps.unit, steps.count) == ("steps", 200)
    epochs = parse_config({**BASE, "train": {"checkpoint_every": 3}}).train.checkpoint_every
    assert (epochs.unit, epochs.count) == ("epochs", 3)
    assert "train.checkpoint_every" in _error({**BASE, "train": {"checkpoint_every": "often"}})


def test_cli_refuses_a_bad_file_with_exit_code_2(home: Path, cli: Callable[..., CliResult]) -> None:
    path = write_project(home.parent, train={"epochs": -1})
    result = cli("train", "-c", str(path))
    assert result.code == 2
    assert "train.epochs" in result.err


def test_cli_names_a_missing_project_file(home: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("train", "-c", "nowhere.yaml")
    assert result.code == 2
    assert "dnnops init" in result.err


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e not in DATA])
def test_init_writes_a_complete_valid_commented_file(
    example: str, home: Path, cli: Callable[..., CliResult]
) -> None:
    target = home.parent / f"{example}.yaml"
    assert cli("init", "--example", example, "--path", str(target)).code == 0
    text = target.read_text()
    assert "# " in text
    config = load_config(target)
    assert config.data.source == f"builtin:{example}"
    raw = yaml.safe_load(text)
    assert set(raw) == {
        "name",
        "data",
        "model",
        "train",
        "evaluate",
        "serve",
        "monitor",
        "slo",
        "rollout",
        "retrain",
    }
    assert cli("init", "--example", example, "--path", str(target)).code == 2  # no overwrite
    assert cli("init", "--example", "imagenet", "--path", str(target), "--force").code == 2
