"""``dnnops tune -c dnnops.yaml --trials N``: hyperparameter search, the best registered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dnnops.cli.common import ConfigOpt, HomeOpt, JsonOpt, QuietOpt, print_json
from dnnops.cli.models import print_published, raise_if_gates_failed
from dnnops.config import load_config
from dnnops.console import errors_console, format_number, make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.home import resolve_home

if TYPE_CHECKING:  # dnnops --help must not import Optuna
    from dnnops.tune.study import TrialResult


def tune_command(
    config: ConfigOpt = Path("dnnops.yaml"),
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials this process runs (default: 20).")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Start no trial after this long, e.g. 30m or 1h.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna RDB URL (default: beside the metadata database)."),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="The study's name (default: the project's name).")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Tune the project: Optuna's TPE over tune.space, trials pruned on their validation
    score, each trial a run (dnnops runs list); the best trial is registered like a
    training. Run it again, or on several hosts at once, to add trials to the study."""
    from dnnops.tune.study import TuneRequest, require_optuna, tune_project

    require_optuna()
    project = load_config(config)
    timeout_s = parse_duration(timeout) if timeout is not None else None
    if trials is None and timeout_s is None:
        trials = DEFAULT_TRIALS
    said = errors_console()

    def told(trial: TrialResult) -> None:
        if not quiet and not json_out:
            said.print(_trial_line(trial), soft_wrap=True)

    request = TuneRequest(trials=trials, timeout_s=timeout_s, storage_url=storage, study=study)
    outcome = tune_project(project, resolve_home(home), request, on_trial=told)
    if json_out:
        print_json(
            {
                "study": outcome.study,
                "storage": outcome.storage,
                "metric": outcome.metric,
                "best": outcome.best.__dict__ if outcome.best else None,
                "trials": [t.__dict__ for t in outcome.trials],
                "registered": outcome.published.record.ref if outcome.published else None,
                "note": outcome.note,
            }
        )
    else:
        console = make_console()
        rows = [
            [t.number, t.state, "" if t.value is None else t.value, t.run_id or "", _params(t)]
            for t in outcome.trials
        ]
        title = f"study {outcome.study} ({outcome.storage}): {len(rows)} trials"
        console.print(rows_table(title, ["trial", "state", outcome.metric, "run", "params"], rows))
        if outcome.best is not None:
            console.print(
                f"best: trial {outcome.best.number}, {outcome.metric} "
                f"{format_number(outcome.best.value)}, {_params(outcome.best)}",
                soft_wrap=True,
            )
        if outcome.published is not None:
            print_published(outcome.published, json_out=False)
        console.print(outcome.note, soft_wrap=True)
    if outcome.published is not None:
        raise_if_gates_failed(outcome.published)


DEFAULT_TRIALS = 20


def _trial_line(trial: TrialResult) -> str:
    if trial.state == "pruned":
        return f"trial {trial.number}: pruned after epoch {trial.pruned_at} ({_params(trial)})"
    value = "-" if trial.value is None else format_number(trial.value)
    return f"trial {trial.number}: {trial.state}, {value} ({_params(trial)}), run {trial.run_id}"


def _params(trial: TrialResult) -> str:
    return ", ".join(f"{k}={format_number(v)}" for k, v in trial.params.items())
