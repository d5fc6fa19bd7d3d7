"""``dnnops init|quickstart|train``, ``dnnops runs ...`` and ``dnnops data ...``: the
commands of the first stages (data, training, registration)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from dnnops.cli.common import ConfigOpt, HomeOpt, JsonOpt, QuietOpt, print_json
from dnnops.cli.models import print_published, raise_if_gates_failed
from dnnops.config import ProjectConfig, ServeConfig, load_config
from dnnops.console import (
    errors_console,
    key_value_table,
    make_console,
    progress_sink,
    rows_table,
)
from dnnops.data.media.summary import media_columns
from dnnops.data.policy import InputPolicy
from dnnops.data.prepare import PreparedData, load_dataset, load_schema
from dnnops.data.preprocess import Preprocessor
from dnnops.data.profile import build_profile
from dnnops.data.schema import Schema, infer_schema
from dnnops.data.sources import load_source
from dnnops.data.validate import validate_file
from dnnops.errors import RegistrationFailed, UsageError
from dnnops.examples import example_text, write_example_data
from dnnops.home import Home, resolve_home
from dnnops.registry.from_run import candidate_from_run, check_before_training
from dnnops.registry.open import open_registry, open_runs
from dnnops.registry.publish import Published, publish
from dnnops.registry.runs import Runs
from dnnops.registry.starting import version_weights
from dnnops.train.pipeline import TrainOutcome, train_project

app = typer.Typer(no_args_is_help=True, add_completion=False)
data_app = typer.Typer(no_args_is_help=True, help="Profile and validate data files.")


def _store(home: Home) -> Runs:
    return open_runs(home)


# -- init and quickstart -------------------------------------------------------------


@app.command()
def init(
    example: Annotated[
        str | None,
        typer.Option(
            help="digits | breast_cancer | wine | images (a photo folder) | text (a text "
            "column); the last two write their data beside the project file (default: digits)"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Infer the project from this CSV or Parquet file, or a photo folder."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="With --data: the column to predict.")] = None,
    task: Annotated[
        str | None, typer.Option(help="With --data: classification | regression (inferred).")
    ] = None,
    path: Annotated[Path, typer.Option("--path", help="Where to write.")] = Path("dnnops.yaml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a complete, commented dnnops.yaml: an example, or inferred from your data."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    if data is None:
        if target is not None or task is not None:
            raise UsageError("--target and --task go with --data FILE")
        name = example or "digits"
        text = example_text(name)
        made = write_example_data(name, path.parent)
        path.write_text(text, encoding="utf-8")
        if made is not None:
            typer.echo(f"wrote {made}")
        typer.echo(f"wrote {path} (example {name}); train it with: dnnops train -c {path}")
        return
    _init_from_data(data, target, task, path)


def _init_from_folder(folder: Path, target: str, task: str | None, path: Path) -> None:
    """A folder of photos, one subfolder per class: an image classifier's project."""
    from dnnops.scaffold import infer_photo_folder, photo_project_text

    if task not in (None, "classification"):
        raise UsageError(
            f"a folder of photos trains a classifier (its subfolders); got --task {task}"
        )
    found = infer_photo_folder(folder, target)
    path.write_text(photo_project_text(found), encoding="utf-8")
    name, count = min(found.classes.items(), key=lambda item: item[1])
    make_console().print(
        f"wrote {path}: a photo folder, {found.images} images in {len(found.classes)} classes "
        f"(the smallest {name!r} with {count}), seen at {found.side}x{found.side} with "
        f"{found.channels} channel(s); the class is called {target!r} (--target); files that "
        "are not usable images are left out when training (data.image.unreadable)",
        soft_wrap=True,
    )
    make_console().print(f"train it with: dnnops train -c {path}", soft_wrap=True)


def _init_from_data(data: Path, target: str | None, task: str | None, path: Path) -> None:
    from dnnops.scaffold import infer_project, project_text

    if data.is_dir():
        _init_from_folder(data, target or "label", task, path)
        return
    if target is None:
        raise UsageError(f"name the column to predict: dnnops init --data {data} --target COL")
    if task not in (None, "classification", "regression"):
        raise UsageError(f"--task must be classification or regression, got {task!r}")
    inferred = infer_project(data, target, task)  # type: ignore[arg-type]
    path.write_text(project_text(inferred), encoding="utf-8")
    console = make_console()
    inputs = (
        f"text column {inferred.text!r} ({inferred.text_reason})"
        if inferred.text is not None
        else f"categories: {', '.join(inferred.categories) or 'none'}"
    )
    console.print(
        f"wrote {path}: task [bold]{inferred.task}[/] ({inferred.task_reason}; override with "
        f"--task or the task key), {inferred.rows} rows, {inputs}",
        soft_wrap=True,
    )
    for finding in inferred.drop:
        console.print(f"dropped {finding.column!r}: {finding.reason}", soft_wrap=True)
    for leak in inferred.leaks:
        console.print(f"[yellow]warning:[/] {leak.message()}", soft_wrap=True)
    if inferred.imbalanced:
        console.print(
            f"the rarest class is {inferred.minority_share:.1%} of the rows: class weights "
            "on, gates on balanced accuracy and the worst class's recall",
            soft_wrap=True,
        )
    console.print(
        "next:\n"
        f"  dnnops train -c {path}\n"
        f"  dnnops models show {inferred.name}@production      # inputs and a request body\n"
        f"  dnnops serve --model {inferred.name}@production\n"
        f"  dnnops predict {data} --model {inferred.name}@production --out predictions.parquet"
    )


@app.command()
def quickstart(home: HomeOpt = None, quiet: QuietOpt = False) -> None:
    """The whole lifecycle on builtin:digits: train, serve, drift, retrain, canary, rollback."""
    from dnnops.quickstart.story import run_story

    console = make_console()
    resolved = resolve_home(home)
    console.print(f"[bold]dnnops quickstart[/] on builtin:digits, state in {resolved.root}")
    run_story(resolved, console)


# -- train and runs --------------------------------------------------------------------


@app.command()
def train(
    config: ConfigOpt = Path("dnnops.yaml"),
    resume: Annotated[
        str | None, typer.Option(help="Continue this run from its last checkpoint.")
    ] = None,
    int8: Annotated[bool, typer.Option(help="Also register a dynamic-INT8 graph.")] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train, evaluate and register the project's model (or resume a run)."""
    project = None if resume else load_config(config)
    resolved = resolve_home(home)
    is_main = int(os.environ.get("RANK", "0")) == 0
    outcome = _train(project, resolved, resume, quiet or json_out or not is_main)
    if not is_main:
        return
    published = _publish(outcome, resolved, int8 or outcome.config.serve.backend == "onnx-int8")
    if json_out:
        record = published.record
        print_json(
            {
                "run_id": outcome.run_id,
                "metrics": outcome.metrics,
                "weights_sha256": outcome.weights_sha256,
                "dataset_sha256": outcome.dataset_sha256,
                "model": record.model,
                "version": record.version,
                "aliases": record.aliases,
                "gates_passed": record.gates_passed,
                "evaluation": published.report.metrics if published.report else {},
            }
        )
    else:
        _print_outcome(make_console(), outcome)
        print_published(published, json_out=False)
    raise_if_gates_failed(published)


def _publish(outcome: TrainOutcome, home: Home, int8: bool) -> Published:
    """Register the run; a failure here leaves the run finished and says how to retry."""
    registry = open_registry(home)
    try:
        return publish(registry, candidate_from_run(outcome), outcome.config.evaluate, int8=int8)
    except Exception as exc:
        raise RegistrationFailed(
            f"run {outcome.run_id} finished (weights in {outcome.run_dir}) but was not "
            f"registered: {type(exc).__name__}: {exc}. Once fixed, register it with: "
            f"dnnops models register {outcome.run_id}"
        ) from exc


def _warn_if_incomparable(
    home: Home, console: Any
) -> Callable[[ProjectConfig, PreparedData], None]:
    """Before the first step: say when production cannot be judged beside the new
    version (a dropped column, other classes), instead of learning it after training."""

    def check(config: ProjectConfig, prepared: PreparedData) -> None:
        from dnnops.registry.compatibility import production_mismatch

        mismatch = production_mismatch(open_registry(home), config.name, prepared.schema)
        if mismatch is not None:
            console.print(
                f"[yellow]note:[/] {mismatch}; the new version will be registered and gated "
                "on its own, without a side-by-side comparison",
                soft_wrap=True,
            )

    return check


def _train(
    config: ProjectConfig | None, home: Home, resume: str | None, quiet: bool
) -> TrainOutcome:
    store = _store(home)
    if resume is not None:
        store.get(resume)  # a clear error for an unknown run id
    if config is not None:
        check_before_training(config)
    progress = progress_sink(quiet)
    try:
        return train_project(
            config,
            home.runs_dir,
            store,
            resume=resume,
            progress=progress,
            before_fit=_warn_if_incomparable(home, errors_console()),
            weights=version_weights(open_registry(home)),
        )
    finally:
        if progress is not None:
            progress.close()


def _print_outcome(console: Any, outcome: TrainOutcome) -> None:
    spec = outcome.spec
    rows = {
        "run": outcome.run_id,
        "model": f"{spec.arch} {list(spec.input_shape)} -> "
        + ("a number" if spec.target_scale else f"{spec.num_classes} classes"),
        **outcome.metrics,
        "early stopped": outcome.stopped_early,
        "seconds": round(outcome.seconds, 1),
        "dataset sha256": outcome.dataset_sha256[:16] + "…",
        "weights sha256": outcome.weights_sha256[:16] + "…",
    }
    start = outcome.start
    if start is not None:
        frozen = f", {start.frozen} frozen" if start.frozen else ""
        rows["started from"] = (
            f"{start.origin}: {start.loaded} tensors loaded, {len(start.fresh)} fresh{frozen}"
        )
    console.print(key_value_table(f"run {outcome.run_id}", rows))


# -- data ------------------------------------------------------------------------------


@data_app.command("profile")
def data_profile(
    file: Path,
    target: Annotated[
        str | None, typer.Option(help="The label column, if the file has one.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Schema and statistics of a CSV, Parquet or NPZ file, or a folder of images (one
    subfolder per class); a column of free text is described as text."""
    dataset = load_source(str(file), target or "target", require_target=target is not None)
    media = media_columns(dataset, folder=file.is_dir())
    if media and isinstance(dataset.inputs, pd.DataFrame):
        dataset = replace(dataset, inputs=dataset.inputs.drop(columns=list(media)))
    tabular = not isinstance(dataset.inputs, pd.DataFrame) or len(dataset.inputs.columns) > 0
    schema = infer_schema(dataset, target_name=target or "target") if tabular else None
    profile = build_profile(dataset, schema) if schema is not None else None
    if json_out:
        print_json(
            {
                "file": str(file),
                "rows": len(dataset),
                "schema": schema.model_dump() if schema else None,
                "profile": profile.model_dump() if profile else None,
                "media": {name: found.model_dump() for name, found in media.items()},
            }
        )
        return
    console = make_console()
    if schema is not None and profile is not None:
        rows = []
        for column, feature in zip(_schema_rows(schema), profile.features, strict=False):
            spread: list[object] = ["", ""] if feature.mean is None else [feature.mean, feature.std]
            rows.append([*column, feature.null_count, *spread])
        console.print(
            rows_table(
                f"{file}: {len(dataset)} rows",
                ["column", "type", "min", "max", "categories", "nulls", "mean", "std"],
                rows,
            )
        )
    for name, found in media.items():
        console.print(key_value_table(f"{name}: {found.kind}", found.shown()), soft_wrap=True)


def _schema_rows(schema: Schema) -> list[list[object]]:
    if schema.tensor is not None:
        t = schema.tensor
        return [[f"{t.name} {t.shape}", t.dtype, t.min, t.max, ""]]
    return [
        [
            c.name,
            c.type,
            "" if c.min is None else c.min,
            "" if c.max is None else c.max,
            len(c.categories) if c.categories is not None else "",
        ]
        for c in schema.columns
    ]


@data_app.command("validate")
def data_validate(
    file: Path,
    config: ConfigOpt = Path("dnnops.yaml"),
    model: Annotated[
        str | None, typer.Option(help="Validate against this registered version: NAME@REF.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 on any problem, also those the server would accept.")
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check FILE against the schema of a registered version (--model) or of the project's
    data, under the serving input policy (serve.missing, unseen_category, out_of_range,
    non_finite); exit 1 when the server would refuse a row (with --strict: any problem)."""
    resolved = resolve_home(home)
    preprocessor: Preprocessor | None
    if model is not None:
        from dnnops.registry.loader import load_version

        registry = open_registry(resolved)
        record = registry.resolve_ref(model)
        loaded = load_version(registry, record)
        schema, origin, preprocessor = loaded.schema, record.ref, loaded.preprocessor
        # the policy of the server: its -c file's serve section, else the defaults
        serve = load_config(config).serve if config.is_file() else ServeConfig()
    else:
        project = load_config(config)
        schema, origin, preprocessor = _project_schema(project, resolved)
        serve = project.serve
    findings = validate_file(file, schema, InputPolicy.of(serve), preprocessor=preprocessor)
    refused = [f for f in findings if f.refused]
    if json_out:
        print_json(
            {
                "file": str(file),
                "schema_from": origin,
                "valid": not refused,
                "refused": len(refused),
                "accepted": len(findings) - len(refused),
                "findings": [f.to_dict() for f in findings],
            }
        )
    elif findings:
        table = rows_table(
            f"{file}: {len(findings)} problem(s) against {origin}, {len(refused)} refused",
            ["column", "rule", "rows", "first rows", "serving"],
            [[f.column, f.rule, f.rows, _first_rows(f), f.action] for f in findings],
        )
        make_console().print(table)
    else:
        make_console().print(f"{file}: valid against {origin}")
    if refused or (strict and findings):
        raise typer.Exit(1)


def _first_rows(finding: Any) -> str:
    return ", ".join(f"{e['row']}: {e['value']!r}" for e in finding.examples)


def _project_schema(project: ProjectConfig, home: Home) -> tuple[Schema, str, Preprocessor | None]:
    """The schema (and preprocessing) of the project's newest finished run, else the
    schema inferred from its data source."""
    for run in _store(home).list(project.name):
        folder = Path(run.run_dir) / "data"
        if run.status == "finished" and (folder / "schema.json").is_file():
            found = folder / "preprocessing.json"
            preprocessor = (
                Preprocessor.model_validate_json(found.read_bytes()) if found.is_file() else None
            )
            return load_schema(folder / "schema.json"), f"run {run.id}", preprocessor
    if project.data.image is not None or project.data.text is not None:
        raise UsageError(
            "images and texts are validated against a trained version's tokenizer and pixel "
            "budget: train the project first, or pass --model NAME@REF"
        )
    dataset = load_dataset(project.data)
    ignored = [c for c in (project.data.group, *project.data.schema_.drop) if c is not None]
    schema = infer_schema(
        dataset,
        categorical=project.data.schema_.categorical,
        range_tolerance=project.data.schema_.range_tolerance,
        target_name=project.data.target,
        ignored=ignored,
    )
    return schema, project.data.source, None
