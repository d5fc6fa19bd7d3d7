"""``dnnops models ...`` and ``dnnops eval``: the registry from the command line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from dnnops.cli.common import HomeOpt, JsonOpt, print_json
from dnnops.cli.views import inputs_view, lineage_view, report_view, versions_view
from dnnops.config import EvaluateConfig, load_config
from dnnops.console import make_console, rows_table
from dnnops.errors import GatesFailed, UsageError
from dnnops.evaluate.gates import failed_gates_text
from dnnops.evaluate.report import EvaluationReport
from dnnops.files import SHARED_FILE, atomic_write
from dnnops.home import resolve_home
from dnnops.registry.manifest import Manifest
from dnnops.registry.open import open_registry
from dnnops.registry.versions import Registry, VersionNotFound, VersionRecord, parse_ref

if TYPE_CHECKING:  # listing and showing versions must not import torch, onnx or pandas
    from dnnops.data.schema import Schema
    from dnnops.registry.loader import LoadedVersion
    from dnnops.registry.publish import EvaluationData, Published

models_app = typer.Typer(
    no_args_is_help=True, help="Registered model versions, aliases, integrity."
)


@models_app.command("list")
def models_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Every model with its newest version and aliases."""
    models = open_registry(resolve_home(home)).models()
    if json_out:
        print_json(models)
        return
    rows = [
        [m["name"], m["latest_version"], ", ".join(f"{a}={v}" for a, v in m["aliases"].items())]
        for m in models
    ]
    make_console().print(rows_table("models", ["name", "latest", "aliases"], rows))


@models_app.command("show")
def models_show(ref: str, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """NAME: its versions. NAME@REF: one version's lineage, metrics and gates."""
    registry = open_registry(resolve_home(home))
    if "@" not in ref:
        records = registry.versions(ref)
        if json_out:
            print_json([r.to_dict() for r in records])
        else:
            make_console().print(versions_view(ref, records))
        return
    record = registry.resolve_ref(ref)
    manifest = registry.manifest(record)
    schema, example = _inputs(registry, record, manifest)
    request = {"instances": [example]}
    if json_out:
        print_json(
            {
                **record.to_dict(),
                "manifest": manifest,
                "inputs": schema.model_dump(mode="json"),
                "example_request": request,
            }
        )
        return
    console = make_console()
    console.print(lineage_view(record, manifest))
    if manifest.has("evaluation.json"):
        report = EvaluationReport.model_validate_json(
            registry.file(record, manifest, "evaluation.json")
        )
        console.print(report_view(report))
    console.print(inputs_view(schema))
    body = json.dumps(request)
    console.print(
        "example request (typical values from the training data):\n"
        f"  curl -s localhost:8000/v1/models/{record.model}:predict -d '{body}'",
        soft_wrap=True,
    )


def _inputs(registry: Registry, record: VersionRecord, manifest: Manifest) -> tuple[Schema, Any]:
    from dnnops.data.example import example_instance
    from dnnops.data.profile import Profile
    from dnnops.data.schema import Schema

    schema = Schema.model_validate_json(registry.file(record, manifest, "schema.json"))
    profile = None
    if manifest.has("profile.json"):
        profile = Profile.model_validate_json(registry.file(record, manifest, "profile.json"))
    return schema, example_instance(schema, profile)


@models_app.command("alias")
def models_alias(
    name: str,
    version: int,
    alias: str,
    force: Annotated[
        bool, typer.Option(help="Move it onto a version that failed its gates (audited).")
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Point ALIAS (production, candidate, ...) at VERSION; the move is audited. A version
    that failed its evaluation gates takes no alias without --force, as rollout refuses it."""
    from dnnops.rollout.begin import check_gates_passed

    registry = open_registry(resolve_home(home))
    check_gates_passed(registry, registry.resolve(name, str(version)), force, action="alias")
    registry.set_alias(name, alias, version, reason="dnnops models alias")
    typer.echo(f"{name}@{alias} -> version {version}")


@models_app.command("register")
def models_register(
    run: Annotated[str, typer.Argument(help="A finished run's id (dnnops runs list).")],
    int8: Annotated[bool, typer.Option(help="Also register a dynamic-INT8 graph.")] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a finished run as a new version (evaluated and gated like a training):
    for a run whose registration failed, or one trained with a registry elsewhere."""
    from dnnops.registry.from_run import candidate_from_run
    from dnnops.registry.publish import publish
    from dnnops.train.pipeline import finished_run

    resolved = resolve_home(home)
    registry = open_registry(resolved)
    outcome = finished_run(resolved.runs_dir, run)
    try:
        existing = registry.versions(outcome.config.name)
    except VersionNotFound:
        existing = []
    for record in existing:
        if record.run_id == run:
            raise UsageError(f"run {run} is registered already, as {record.ref}")
    published = publish(registry, candidate_from_run(outcome), outcome.config.evaluate, int8=int8)
    print_published(published, json_out)
    raise_if_gates_failed(published)


@models_app.command("audit")
def models_audit(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Who changed what in the registry, newest first."""
    entries = open_registry(resolve_home(home)).audit_log(name)
    if json_out:
        print_json(entries)
        return
    rows = [
        [e["at"][:19], e["actor"], e["action"], e["model"] or "", json.dumps(e["details"])]
        for e in entries
    ]
    make_console().print(
        rows_table("audit log", ["at", "actor", "action", "model", "details"], rows)
    )


@models_app.command("tier")
def models_tier(
    name: str,
    tiers: Annotated[
        str,
        typer.Option(
            "--tiers",
            help="Registered classifiers, fastest first, e.g. small@production,large@production.",
        ),
    ],
    max_accuracy_loss: Annotated[
        float,
        typer.Option(
            help="Accuracy the tiers may give up against the last tier alone (0.001 = 0.1 point)."
        ),
    ] = 0.001,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Labeled CSV/Parquet/NPZ to choose thresholds on (default: the first tier's "
            "validation split)."
        ),
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Point this alias of NAME at the new version.")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register NAME's next version as tiers: the first answers, and hands each row it is
    unsure of (calibrated confidence under a threshold chosen on held-out rows) to the next."""
    from dnnops.registry.loader import TIERS
    from dnnops.registry.tiering import register_tiers

    registry = open_registry(resolve_home(home))
    members = [registry.resolve_ref(ref.strip()) for ref in tiers.split(",") if ref.strip()]
    record = register_tiers(registry, name, members, data=data, max_accuracy_loss=max_accuracy_loss)
    if alias is not None:
        registry.set_alias(name, alias, record.version, reason="dnnops models tier")
    manifest = registry.manifest(record)
    plan = json.loads(registry.file(record, manifest, TIERS))
    if json_out:
        print_json({**record.to_dict(), "tiers": plan})
        return
    console = make_console()
    rows = [
        [
            f"{m['model']}@{m['version']}",
            "-" if m["threshold"] is None else f"{m['threshold']:.4f}",
            f"{share * 100:.1f}%",
        ]
        for m, share in zip(plan["members"], plan["chosen_on"]["shares"], strict=True)
    ]
    chosen = plan["chosen_on"]
    console.print(
        rows_table(
            f"{record.ref}: tiers chosen on {chosen['rows']} rows ({chosen['source']})",
            ["tier", "escalates under", "answers"],
            rows,
        )
    )
    for part in ("chosen_on", "tested_on"):
        judged = plan.get(part)
        if judged:
            console.print(
                f"{judged['source']}: accuracy {judged['accuracy']:.4f} against "
                f"{judged['last_accuracy']:.4f} for the last tier alone ({judged['rows']} rows)"
            )
    if alias is not None:
        console.print(f"{name}@{alias} -> version {record.version}")


@models_app.command("verify")
def models_verify(ref: str, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Check every artifact's SHA-256 and the signature (when signing is on); exit 1 on failure."""
    registry = open_registry(resolve_home(home))
    report = registry.verify(registry.resolve_ref(ref))
    if json_out:
        print_json(report.__dict__)
    elif report.ok:
        typer.echo(
            f"{report.ref}: verified {len(report.checked)} artifacts ({', '.join(report.checked)})"
        )
    else:
        make_console().print(f"[bold red]{report.ref}: FAILED[/]")
        for problem in report.problems:
            typer.echo(f"  {problem}")
    if not report.ok:
        raise typer.Exit(1)


@models_app.command("export")
def models_export(
    ref: str,
    format_: Annotated[str, typer.Option("--format", help="onnx | onnx-int8")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="Where to write (default NAME-vN.onnx).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Labeled data to record INT8's accuracy change.")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Write a version's serving graph to a file (creating the INT8 variant on request)."""
    if format_ not in ("onnx", "onnx-int8"):
        raise UsageError(f"--format must be onnx or onnx-int8, got {format_!r}")
    from dnnops.registry.loader import load_version
    from dnnops.registry.publish import int8_variant

    registry = open_registry(resolve_home(home))
    record = registry.resolve_ref(ref)
    tiers = registry.manifest(record).get("tiers")
    if tiers:  # one file would hold its first tier only: a different model
        raise UsageError(
            f"{record.ref} is tiered ({', '.join(tiers)}): it is several graphs and the "
            "thresholds between them; export each member instead"
        )
    if format_ == "onnx-int8":
        labeled = _labeled_data(load_version(registry, record), data) if data else None
        record = int8_variant(registry, record, labeled)
    loaded = load_version(registry, record, "onnx-int8" if format_ == "onnx-int8" else "onnx")
    suffix = ".int8.onnx" if format_ == "onnx-int8" else ".onnx"
    target = out or Path(f"{record.model}-v{record.version}{suffix}")
    atomic_write(target, loaded.graph, mode=SHARED_FILE)
    details = loaded.manifest.int8 if format_ == "onnx-int8" else None
    typer.echo(
        f"wrote {target} ({len(loaded.graph)} bytes) from {record.ref}"
        + (f"; int8: {json.dumps(details)}" if details else "")
    )


@models_app.command("import")
def models_import(
    name: str,
    file: Path,
    schema: Annotated[
        Path | None, typer.Option(help="Input schema JSON (as `data profile --json`).")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Data for the schema, drift profile and evaluation.")
    ] = None,
    target: Annotated[str, typer.Option(help="The label column of --reference.")] = "target",
    arch: Annotated[
        str | None, typer.Option(help="For weights: mlp|cnn|transformer|python:pkg.mod:Class.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Architecture parameter KEY=VALUE (YAML value).")
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="For weights: one instance's shape, e.g. 1,8,8.")
    ] = None,
    classes: Annotated[str | None, typer.Option(help="Class count N, or names a,b,c.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Project file for evaluate.gates.")
    ] = None,
    alias: Annotated[
        list[str] | None,
        typer.Option(help="Point this alias at the new version (e.g. production); repeatable."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Move --alias even if a gate failed (audited).")
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a model trained elsewhere: .onnx, or .safetensors/.pt weights with --arch.

    An imported version moves no alias unless --alias asks; with labeled --reference
    data it is evaluated and its gates applied."""
    from dnnops.registry.importer import ImportRequest, candidate_from_file
    from dnnops.registry.publish import publish
    from dnnops.rollout.begin import check_gates_passed

    request = ImportRequest(
        name=name,
        file=file,
        schema_file=schema,
        reference=reference,
        target=target,
        arch=arch,
        params=_params(param or []),
        input_shape=_shape(input_shape),
        classes=_class_list(classes),
    )
    evaluate = load_config(config).evaluate if config else EvaluateConfig()
    registry = open_registry(resolve_home(home))
    published = publish(registry, candidate_from_file(request), evaluate)
    record = published.record
    if alias:
        check_gates_passed(registry, record, force, action="alias")
        for name_ in alias:
            registry.set_alias(record.model, name_, record.version, reason="models import --alias")
        published = replace(
            published, record=registry.resolve(record.model, record.version), aliases_moved=alias
        )
    print_published(published, json_out)


def print_published(published: Published, json_out: bool) -> None:
    record = published.record
    if json_out:
        print_json(
            {
                "model": record.model,
                "version": record.version,
                "aliases": record.aliases,
                "gates_passed": record.gates_passed,
                "metrics": record.metrics,
                "gates": [g.to_dict() for g in published.report.gates] if published.report else [],
            }
        )
        return
    console = make_console()
    if published.report is not None:
        console.print(report_view(published.report))
    moved = f"; aliases: {', '.join(published.aliases_moved)}" if published.aliases_moved else ""
    console.print(f"registered [bold]{record.ref}[/] ({gate_verdict(published)}{moved})")


def gate_verdict(published: Published) -> str:
    """What the gates said, in words: passed, failed (which), or why there was no verdict."""
    passed = published.record.gates_passed
    if passed is False and published.report is not None:
        return f"gates failed: {failed_gates_text(published.report.gates)}"
    if passed is None:
        return "not evaluated" if published.report is None else "evaluated, no gates set"
    return "all gates passed" if passed else "a gate failed"


def raise_if_gates_failed(published: Published) -> None:
    """Exit 1 (a check failed) after a version that failed its gates was registered."""
    if published.record.gates_passed is False:
        raise GatesFailed(
            f"{published.record.ref} is registered but failed its gates "
            f"({failed_gates_text(published.report.gates if published.report else [])}); "
            "no alias moved"
        )


def eval_command(
    ref: str,
    data: Annotated[
        Path | None, typer.Option(help="Labeled CSV/Parquet/NPZ (default: the stored report).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Gates from this project file.")
    ] = None,
    cv: Annotated[
        int | None,
        typer.Option(
            "--cv",
            min=2,
            help="K-fold: train the version's recipe K times (on --data or its own data), "
            "each fold the test part once; mean and spread of each metric.",
        ),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate NAME@REF on a labeled file, or print its stored evaluation report."""
    from dnnops.evaluate.report import apply_gates, evaluate_predictions, evaluate_regression
    from dnnops.registry.loader import load_version, make_predictor

    registry = open_registry(resolve_home(home))
    record = registry.resolve_ref(ref)
    loaded = load_version(registry, record)
    if cv is not None:
        _cross_validate(registry, loaded, cv, data=data, home=home, json_out=json_out)
        return
    if data is None:
        if not loaded.manifest.has("evaluation.json"):
            raise UsageError(f"{record.ref} has no stored evaluation; pass --data FILE with labels")
        report = EvaluationReport.model_validate_json(
            registry.file(record, loaded.manifest, "evaluation.json")
        )
    else:
        labeled = _labeled_data(loaded, data)
        predictor = make_predictor(loaded)
        report = (
            evaluate_regression(predictor, labeled.x, labeled.y)
            if loaded.is_regression
            else evaluate_predictions(
                predictor, labeled.x, labeled.y, classes=loaded.classes, decision=loaded.decision
            )
        )
        report = apply_gates(report, _gates(config, registry, loaded))
    if json_out:
        print_json(report.model_dump())
    else:
        make_console().print(report_view(report))
    if report.gates_passed is False:
        raise typer.Exit(1)


def _cross_validate(
    registry: Registry,
    loaded: LoadedVersion,
    folds: int,
    *,
    data: Path | None,
    home: Path | None,
    json_out: bool,
) -> None:
    """``eval --cv K``: the version's recipe (its config.yaml) trained K times."""
    from dnnops.console import progress_sink
    from dnnops.registry.loader import version_config
    from dnnops.tune.crossval import cross_validate

    recipe = version_config(
        registry, loaded, missing="no recipe to cross-validate; evaluate it with --data FILE"
    )
    progress = progress_sink(json_out)
    try:
        result = cross_validate(recipe, resolve_home(home), folds, data=data, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    summary = result.summary()
    if json_out:
        print_json(
            {
                "model": loaded.record.ref,
                "folds": folds,
                "summary": summary,
                "per_fold": [f.__dict__ for f in result.folds],
            }
        )
        return
    rows = [
        [name, s["mean"], s["std"], s["min"], s["max"], loaded.record.metrics.get(name, "")]
        for name, s in summary.items()
    ]
    title = f"{loaded.record.ref}: {folds}-fold cross-validation of its recipe"
    header = ["metric", "mean", "std", "min", "max", "the version's test split"]
    make_console().print(rows_table(title, header, rows))
    runs = ", ".join(f.run_id for f in result.folds)
    make_console().print(f"runs: {runs}", soft_wrap=True)


def _gates(config: Path | None, registry: Registry, loaded: LoadedVersion) -> list[Any]:
    if config is not None:
        return list(load_config(config).evaluate.gates)
    from dnnops.registry.loader import CONFIG, version_config

    if loaded.manifest.has(CONFIG):
        return list(version_config(registry, loaded, missing="").evaluate.gates)
    return []


def _labeled_data(loaded: LoadedVersion, path: Path) -> EvaluationData:
    from dnnops.data.prepare import label_indices
    from dnnops.data.preprocess import apply_preprocessing
    from dnnops.data.sources import load_source
    from dnnops.registry.publish import EvaluationData

    target = loaded.schema.target.name if loaded.schema.target else "target"
    dataset = load_source(str(path), target, drop=loaded.schema.ignored)
    x = apply_preprocessing(loaded.preprocessor, dataset.inputs)
    return EvaluationData(x, label_indices(dataset.target, loaded.schema), dataset.inputs)


def _params(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param {item!r} must be KEY=VALUE, for example hidden=[64,32]")
        out[key] = yaml.safe_load(value)
    return out


def _shape(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(d) for d in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--input-shape {text!r} must be integers separated by commas, e.g. 1,8,8"
        ) from None


def _class_list(text: str | None) -> list[int | str] | None:
    if text is None:
        return None
    if text.isdigit():
        return list(range(int(text)))
    return [int(c) if c.isdigit() else c for c in text.split(",")]


__all__ = ["eval_command", "models_app", "parse_ref", "print_published"]


def _lifecycle_commands() -> None:
    """The commands of ``cli/model_lifecycle`` (a module of their own) under ``models``."""
    from dnnops.cli import model_lifecycle as lifecycle

    for name, command in (
        ("describe", lifecycle.describe_command),
        ("archive", lifecycle.archive_command),
        ("unarchive", lifecycle.unarchive_command),
        ("delete", lifecycle.delete_command),
        ("gc", lifecycle.gc_command),
        ("card", lifecycle.card_command),
    ):
        models_app.command(name)(command)


_lifecycle_commands()
