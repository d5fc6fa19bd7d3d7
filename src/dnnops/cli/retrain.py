"""``dnnops retrain``: run the retraining pipeline when a trigger fired (or ``--force``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, QuietOpt, print_json
from dnnops.config import load_config
from dnnops.console import key_value_table, make_console, progress_sink
from dnnops.home import resolve_home
from dnnops.retrain.pipeline import RetrainOutcome, retrain


def retrain_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="The project file.")] = Path(
        "dnnops.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Retrain even if no trigger fired.")] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check the triggers; retrain, judge the challenger on the newest labels, start a canary."""
    project = load_config(config)
    progress = progress_sink(quiet or json_out)
    try:
        outcome = retrain(project, resolve_home(home), force=force, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if json_out:
        print_json(outcome.to_dict())
        return
    print_outcome(outcome)


def print_outcome(outcome: RetrainOutcome) -> None:
    observed = outcome.observed.to_dict() if outcome.observed else {}
    rows: dict[str, object] = {
        **{k.replace("_", " "): v for k, v in observed.items()},
        "triggers": "; ".join(outcome.decision.fired) or "none",
        "champion": outcome.champion,
        "challenger": outcome.challenger,
        "started from": outcome.started_from if outcome.challenger is not None else "-",
        **{f"rows {k}": v for k, v in outcome.rows.items()},
        **{f"accuracy {k}": v for k, v in outcome.accuracy.items()},
        "outcome": outcome.outcome,
    }
    make_console().print(key_value_table("retraining", rows))
