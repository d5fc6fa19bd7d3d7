"""``dnnops models describe|archive|unarchive|delete|gc|card``: who a model belongs to,
how a version ends, and its model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, print_json
from dnnops.errors import UsageError
from dnnops.files import SHARED_FILE, atomic_write
from dnnops.home import resolve_home
from dnnops.registry.open import database_registry
from dnnops.registry.retirement import (
    archive,
    collect_garbage,
    delete_version,
    describe_model,
    model_info,
    unarchive,
)
from dnnops.registry.versions import parse_ref

Reason = Annotated[str, typer.Option(help="Kept in the audit log.")]


def describe_command(
    name: str,
    owner: Annotated[
        list[str] | None, typer.Option(help="An owner (repeatable; replaces the list).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the model does.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="Who should use it, for what.")] = None,
    limitations: Annotated[str | None, typer.Option(help="Where it must not be trusted.")] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show or set a model's owners and card text (the change is audited)."""
    registry = database_registry(resolve_home(home), "dnnops models describe")
    card = {
        k: v
        for k, v in (
            ("description", description),
            ("intended_use", intended_use),
            ("limitations", limitations),
        )
        if v is not None
    }
    if owner is None and not card:
        found = model_info(registry, name)
    else:
        found = describe_model(registry, name, owners=owner, card=card)
    if json_out:
        print_json(found)
        return
    typer.echo(f"{name}: owners {', '.join(found['owners']) or 'none'}")
    for key in ("description", "intended_use", "limitations"):
        typer.echo(f"  {key.replace('_', ' ')}: {found[key] or '-'}")


def archive_command(ref: str, reason: Reason = "", home: HomeOpt = None) -> None:
    """Keep NAME@VERSION but never serve or alias it (refused while an alias or a rollout
    points at it)."""
    model, version = _numbered(ref)
    archive(
        database_registry(resolve_home(home), "dnnops models archive"),
        model,
        version,
        reason=reason,
    )
    typer.echo(f"archived {model}@{version}: kept, not servable")


def unarchive_command(ref: str, reason: Reason = "", home: HomeOpt = None) -> None:
    """Make an archived version servable again."""
    model, version = _numbered(ref)
    unarchive(
        database_registry(resolve_home(home), "dnnops models unarchive"),
        model,
        version,
        reason=reason,
    )
    typer.echo(f"{model}@{version} is servable again")


def delete_command(
    ref: str,
    reason: Reason = "",
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    home: HomeOpt = None,
) -> None:
    """Delete NAME@VERSION from the registry (refused while an alias or a rollout points at
    it); its files go at the next `dnnops models gc`. The audit log keeps its record."""
    model, version = _numbered(ref)
    if not yes:
        raise UsageError(f"deleting {model}@{version} cannot be undone; add --yes to confirm")
    delete_version(
        database_registry(resolve_home(home), "dnnops models delete"), model, version, reason=reason
    )
    typer.echo(f"deleted {model}@{version}; free its files with: dnnops models gc --apply")


def gc_command(
    apply: Annotated[bool, typer.Option(help="Remove them (without it: a dry run).")] = False,
    grace: Annotated[
        str, typer.Option(help="Keep unreferenced artifacts younger than this.")
    ] = "1h",
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Artifacts no remaining version names (a deleted version's files), and uploads a
    client abandoned (``<home>/uploads``): listed, or removed with --apply."""
    from dnnops.durations import parse_duration
    from dnnops.serve.uploads import abandoned_uploads

    resolved = resolve_home(home)
    grace_s = parse_duration(grace)
    found = collect_garbage(
        database_registry(resolved, "dnnops models gc"), dry_run=not apply, grace_s=grace_s
    )
    parts = abandoned_uploads(resolved.root / "uploads", grace_s=grace_s, remove=apply)
    if json_out:
        print_json({**found.to_dict(), "abandoned_uploads": parts.to_dict()})
        return
    verb = "removed" if apply else "would remove"
    typer.echo(
        f"{verb} {len(found.removed)} artifact(s), {found.bytes} bytes; {found.referenced} "
        f"referenced, {found.kept_young} unreferenced but younger than {grace}; "
        f"{verb} {parts.count} abandoned upload(s), {parts.bytes} bytes"
    )
    for digest in found.removed:
        typer.echo(f"  {digest}")


def card_command(
    ref: str,
    format_: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write it here instead of stdout.")] = None,
    home: HomeOpt = None,
) -> None:
    """The version's model card: data, metrics beside baselines, gates, fairness,
    calibration, and its owners' intended use and limitations."""
    from dnnops.registry.model_card import card_markdown, model_card

    if format_ not in ("md", "json"):
        raise UsageError(f"--format must be md or json, got {format_!r}")
    registry = database_registry(resolve_home(home), "dnnops models card")
    card = model_card(registry, registry.resolve_ref(ref))
    text = card_markdown(card) if format_ == "md" else json.dumps(card, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write(out, text.encode(), mode=SHARED_FILE)
    typer.echo(f"wrote {out}")


def _numbered(ref: str) -> tuple[str, int]:
    """NAME@VERSION by number: an alias would name a version that is about to move."""
    model, version = parse_ref(ref)
    if not str(version).isdigit():
        raise UsageError(f"{ref}: name the version by number (NAME@3), not by alias")
    return model, int(version)
