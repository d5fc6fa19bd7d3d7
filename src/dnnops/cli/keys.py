"""``dnnops keys``: named API keys for the server, each with a role (reader, labeler,
deployer, admin) and optionally one model and an expiry. A key is shown once, when it is
created; the metadata store keeps only its SHA-256."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, print_json
from dnnops.console import make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.registry.api_keys import ROLES, KeyStore, Role
from dnnops.registry.db import open_engine

keys_app = typer.Typer(no_args_is_help=True, help="Named API keys and their roles.")


def _store(home: Path | None) -> KeyStore:
    return KeyStore(open_engine(resolve_home(home).db_url))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what holds it (alice, ci, labelling).")],
    role: Annotated[str, typer.Option(help="reader, labeler, deployer or admin.")] = "reader",
    model: Annotated[str | None, typer.Option(help="Limit the key to this model's routes.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expire after this long: 90d, 12h (default: never).")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a key; it is printed once: keep it (the store keeps only its hash)."""
    if role not in ROLES:
        raise UsageError(f"--role {role!r}: one of {', '.join(ROLES)}")
    chosen: Role = role
    seconds = parse_duration(expires) if expires is not None else None
    secret, key = _store(home).create(name, chosen, model=model, expires_s=seconds)
    if json_out:
        print_json({**key.to_dict(), "key": secret})
        return
    console = make_console()
    console.print(f"key {name} ({role}{' on ' + model if model else ''}): {secret}")
    console.print("send it as Authorization: Bearer <key>; it is not shown again")


@keys_app.command("list")
def keys_list(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Every key issued: role, model, created, expires, last used, revoked."""
    keys = _store(home).list()
    if json_out:
        print_json([k.to_dict() for k in keys])
        return
    rows = [
        [k.name, k.role, k.model or "-", k.created_at[:19], (k.expires_at or "never")[:19],
         (k.last_used_at or "never")[:19], (k.revoked_at or "-")[:19]]
        for k in keys
    ]  # fmt: skip
    columns = ["name", "role", "model", "created", "expires", "last used", "revoked"]
    make_console().print(rows_table("keys", columns, rows))


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """End a key: servers refuse it within seconds."""
    key = _store(home).revoke(name)
    if json_out:
        print_json(key.to_dict())
        return
    make_console().print(f"revoked key {name}; servers refuse it within 5 s")
