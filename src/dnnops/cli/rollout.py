"""``dnnops rollout start|status|abort``: rollouts are rows in the metadata store; the
server's controller applies them within a tick, so these commands need no server URL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, print_json
from dnnops.config import RolloutConfig, load_config
from dnnops.console import format_number, key_value_table, make_console, rows_table
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.registry.db import open_engine
from dnnops.registry.open import database_url, open_registry
from dnnops.registry.versions import parse_ref
from dnnops.rollout.begin import begin_rollout
from dnnops.rollout.policy import RolloutState
from dnnops.rollout.store import RolloutStore

rollout_app = typer.Typer(
    no_args_is_help=True, help="Canary, shadow and blue-green rollouts with automatic rollback."
)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Project file (its rollout section).")
]


@rollout_app.command("start")
def rollout_start(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION or NAME@ALIAS to roll out.")],
    steps: Annotated[
        str | None, typer.Option(help="Traffic percentages, e.g. 5,25,50,100.")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="canary, shadow or blue_green.")] = None,
    interval: Annotated[str | None, typer.Option(help="Time per step, e.g. 30s.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint name (default: the model's name).")
    ] = None,
    config: ConfigOption = None,
    force: Annotated[
        bool, typer.Option(help="Roll out a version that failed its gates (audited).")
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a rollout (or release one held for approval); the server applies it."""
    name, version = parse_ref(ref)
    resolved = resolve_home(home)
    store = RolloutStore(open_engine(database_url(resolved, "dnnops rollout start")))
    registry = open_registry(resolved)
    target = endpoint or name
    held = store.active(target)
    candidate = registry.resolve(name, version).version
    if held is not None and held.status == "awaiting_approval" and held.candidate == candidate:
        rollout = store.approve(target)
    else:
        policy = _policy(config, steps, mode, interval)
        rollout = begin_rollout(
            store, registry, target, model=name, ref=version, policy=policy, force=force
        )
    if json_out:
        print_json(rollout.to_dict())
        return
    console = make_console()
    console.print(
        f"rollout {rollout.id}: {name}@{rollout.candidate} on {target}, {rollout.mode}, "
        f"steps {', '.join(f'{s}%' for s in rollout.steps)} (baseline v{rollout.baseline})"
    )
    console.print(f"the server applies it within a second; watch: dnnops rollout status {target}")


@rollout_app.command("status")
def rollout_status(
    name: Annotated[str, typer.Argument(help="Endpoint (model) name.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The latest rollout of an endpoint and every check it went through."""
    resolved = resolve_home(home)
    rollouts = RolloutStore(open_engine(database_url(resolved, "dnnops rollout status"))).history(
        name, limit=10
    )
    if not rollouts:
        raise UsageError(f"endpoint {name!r} has no rollouts; start one: dnnops rollout start")
    if json_out:
        print_json(
            {
                "rollout": rollouts[0].to_dict(),
                "earlier": [r.summary() for r in rollouts[1:]],
            }
        )
        return
    _print_status(rollouts[0], rollouts[1:])


@rollout_app.command("abort")
def rollout_abort(
    name: Annotated[str, typer.Argument(help="Endpoint (model) name.")],
    reason: Annotated[str, typer.Option(help="Kept in the rollout's record.")] = "aborted",
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop the rollout in progress: all traffic back on the stable version."""
    resolved = resolve_home(home)
    rollout = RolloutStore(open_engine(database_url(resolved, "dnnops rollout abort"))).abort(
        name, reason
    )
    if json_out:
        print_json(rollout.summary())
        return
    make_console().print(
        f"rollout {rollout.id} aborted; the server moves all traffic of {name} back to "
        f"v{rollout.baseline} within a second"
    )


def _policy(
    config: Path | None, steps: str | None, mode: str | None, interval: str | None
) -> RolloutConfig:
    base = load_config(config).rollout if config is not None else RolloutConfig()
    overrides: dict[str, Any] = {}
    if steps is not None:
        try:
            overrides["steps"] = [int(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            message = f"--steps: {steps!r} is not a list of percentages like 5,25,100"
            raise UsageError(message) from None
    if mode is not None:
        overrides["mode"] = mode
    if interval is not None:
        overrides["interval"] = interval
    try:
        return RolloutConfig.model_validate({**base.model_dump(), **overrides})
    except ValueError as exc:
        raise UsageError(f"rollout options: {exc}") from None


def _print_status(rollout: RolloutState, earlier: list[RolloutState]) -> None:
    console = make_console()
    console.print(
        key_value_table(
            f"rollout {rollout.id} of {rollout.model}@{rollout.candidate}",
            {
                "status": rollout.status,
                "mode": rollout.mode,
                "step": f"{rollout.step + 1} of {len(rollout.steps)} ({rollout.weight}%)",
                "baseline": rollout.baseline,
                "failed checks": rollout.failed_checks,
                "reason": rollout.reason or "-",
                "last change": time.strftime("%H:%M:%S", time.localtime(rollout.updated)),
            },
        )
    )
    rows = [
        (
            time.strftime("%H:%M:%S", time.localtime(check["at"])),
            f"{check['weight']}%",
            check["verdict"],
            "; ".join(
                f"{g['gate']} {g['outcome']}"
                + (f" {format_number(g['value'])}" if g["value"] is not None else "")
                for g in check["gates"]
            ),
        )
        for check in rollout.history[-15:]
    ]
    if rows:
        console.print(rows_table("checks", ["at", "traffic", "verdict", "gates"], rows))
    for other in earlier[:5]:
        console.print(f"earlier: rollout {other.id} of v{other.candidate}: {other.status}")
