"""The search space: dotted keys of dnnops.yaml, sampled by a trial and written back.

A trial's values are applied to the project file as it would be written by hand and
validated like it (``parse_config``), so a tuned run is an ordinary run: its config
snapshot says exactly what it trained with.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from dnnops.config import ParamSpace, ProjectConfig, parse_config
from dnnops.errors import ConfigError


class Trial(Protocol):
    """What sampling needs of ``optuna.Trial`` (a fake in unit tests)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any: ...


def default_space(config: ProjectConfig) -> dict[str, ParamSpace]:
    """What matters most for an MLP on a table (RealMLP's and TabM's search spaces agree
    on these): learning rate, batch size, weight decay, width, depth and dropout."""
    space = {
        "train.lr": ParamSpace(low=1e-4, high=3e-2, log=True),
        "train.batch_size": ParamSpace(choices=[64, 128, 256, 512]),
        "train.weight_decay": ParamSpace(low=1e-6, high=1e-1, log=True),
    }
    if config.model.arch == "mlp":
        width = int((config.model.params.get("hidden") or [128])[0])
        space["model.params.hidden"] = ParamSpace(
            choices=[[width], [width, width // 2 or 1], [2 * width, width], [2 * width] * 3]
        )
        space["model.params.dropout"] = ParamSpace(low=0.0, high=0.4)
    return space


def sample(trial: Trial, space: dict[str, ParamSpace]) -> dict[str, Any]:
    """One value per key; a choice that is a list (an MLP's widths) travels as JSON text,
    since Optuna's categorical values must be plain numbers or strings."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if spec.choices is not None:
            plain = all(isinstance(c, bool | int | float | str) or c is None for c in spec.choices)
            encoded = spec.choices if plain else [json.dumps(c) for c in spec.choices]
            chosen = trial.suggest_categorical(key, encoded)
            values[key] = chosen if plain else json.loads(chosen)
        elif spec.int_:
            values[key] = trial.suggest_int(
                key, int(spec.low or 0), int(spec.high or 0), log=spec.log
            )
        else:
            values[key] = trial.suggest_float(key, spec.low or 0.0, spec.high or 0.0, log=spec.log)
    return values


def apply_values(config: ProjectConfig, values: dict[str, Any]) -> ProjectConfig:
    """``config`` with each dotted key set, validated as a project file is."""
    raw = config.model_dump(mode="json", by_alias=True, exclude={"tune"})
    raw["tune"] = config.tune.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    raise ConfigError(f"tune.space: {key!r}: {part!r} is not a section")
                child = node[part] = {}
            node = child
        node[leaf] = value
    return parse_config(raw, origin="a tuning trial (tune.space)")


def check_space(config: ProjectConfig, space: dict[str, ParamSpace]) -> None:
    """Refuse a space whose keys the project file does not take, before any trial runs:
    each key set to its first choice or its low end must give a valid file."""
    edges = {k: s.choices[0] if s.choices is not None else s.low for k, s in space.items()}
    apply_values(config, edges)
