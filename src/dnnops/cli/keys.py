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
from dnnops.registry.open import database_url

keys_app = typer.Typer(no_args_is_help=True, help="Named API keys and their roles.")


def _store(home: Path | None) -> KeyStore:
    return KeyStore(open_engine(database_url(resolve_home(home), "dnnops keys")))


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


@keys_app.command("rotate")
def keys_rotate(
    old_key_file: Annotated[
        Path, typer.Option(help="The retired key-encryption key (32 bytes, raw or base64).")
    ],
    quiet: Annotated[
        str, typer.Option(help="Leave log segments written to this recently (a server may append).")
    ] = "10m",
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-wrap every sealed artifact and log record under the current encryption key
    (DNNOPS_ENCRYPTION_KEY_FILE): only each header's wrapped data key changes."""
    import os

    from dnnops.encryption import KEY_FILE_ENV, Sealer, current_key, read_key_file
    from dnnops.key_rotation import Rotated, rotate_artifacts, rotate_logs
    from dnnops.registry.artifacts import open_store

    current = current_key(os.environ)
    if current is None:
        raise UsageError(f"set {KEY_FILE_ENV} to the new key; --old-key-file names the old one")
    sealer = Sealer(current, (read_key_file(old_key_file),))
    resolved = resolve_home(home)
    out = Rotated()
    rotate_artifacts(open_store(resolved.artifacts_url), sealer, out)
    rotate_logs(resolved.logs_dir, sealer, out, quiet_s=parse_duration(quiet))
    if json_out:
        print_json(out.to_dict())
        return
    console = make_console()
    console.print(
        f"re-wrapped {out.rewrapped}; {out.current} already under key "
        f"{sealer.current_id.hex()}; {out.plain} written unencrypted (left as they are)"
    )
    for path in out.left:
        console.print(f"  left for a later run (being written, or damaged): {path}")
