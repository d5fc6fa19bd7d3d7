"""Starting a rollout: the checks both the CLI and the admin route make first."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dnnops.config import RolloutConfig
from dnnops.durations import format_duration
from dnnops.errors import GatesFailed, UsageError
from dnnops.evaluate.gates import failed_gates_text
from dnnops.registry.versions import Registry, VersionNotFound, VersionRecord
from dnnops.rollout.policy import RolloutState, plan_steps
from dnnops.rollout.store import RolloutStore


def begin_rollout(
    store: RolloutStore,
    registry: Registry,
    endpoint: str,
    *,
    model: str,
    ref: str,
    policy: RolloutConfig,
    baseline: int | None = None,
    approval: bool = False,
    force: bool = False,
) -> RolloutState:
    """Persist a new rollout of ``model@ref`` on ``endpoint`` against ``baseline`` (by
    default the version ``production`` points at). The server's controller applies it.
    A version that failed its gates is refused unless ``force`` (then the audit log says so)."""
    candidate = registry.resolve(model, ref)
    check_gates_passed(registry, candidate, force, action="rollout")
    if policy.replay == "required":
        check_replayed(registry, candidate, force, max_age_s=policy.replay_max_age)
    if baseline is None:
        try:
            baseline = registry.resolve(model, "production").version
        except VersionNotFound:
            baseline = None
    if baseline == candidate.version:
        raise UsageError(
            f"{model}@{candidate.version} already serves as the stable version; "
            "roll out a different version"
        )
    steps = sorted(set(policy.steps))
    if policy.mode == "canary" and steps[-1] != 100:
        steps.append(100)  # a canary ends with all traffic on the candidate, then promotes
    return store.create(
        endpoint,
        model,
        candidate.version,
        baseline=baseline,
        mode=policy.mode,
        steps=plan_steps(policy.mode, steps),
        policy=policy.model_dump(mode="json"),
        approval=approval,
    )


REPLAY = "replay"
"""The audit action a replay is recorded under (``batch/replay.py``)."""


def check_replayed(
    registry: Registry, record: VersionRecord, force: bool, *, max_age_s: float
) -> None:
    """``rollout.replay: required``: the candidate's newest replay within ``max_age_s``
    passed; else refused with the command to run (``force`` overrides, audited)."""
    newest = next(
        (
            entry
            for entry in registry.audit_log(record.model, limit=500)
            if entry["action"] == REPLAY and entry["details"].get("version") == record.version
        ),
        None,
    )
    ref = f"{record.model}@{record.version}"
    fresh = newest is not None and time.time() - _seconds(newest["at"]) <= max_age_s
    if fresh and newest is not None and newest["details"].get("passed"):
        return
    why = (
        f"its replay was refused: {newest['details'].get('message')}"
        if fresh and newest is not None
        else f"no replay of it in the last {format_duration(max_age_s)}"
    )
    if force:
        registry.audit("forced_rollout", record.model, {"version": record.version, "replay": why})
        return
    raise GatesFailed(
        f"rollout.replay is required and {ref} has {why}: run dnnops replay {ref} --since 1d "
        "-c dnnops.yaml (or --force to roll it out anyway, audited)"
    )


def _seconds(iso: str) -> float:
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def check_gates_passed(
    registry: Registry, record: VersionRecord, force: bool, *, action: str
) -> None:
    """Refuse to put a version that failed its gates in front of traffic, unless forced."""
    if record.gates_passed is not False:
        return
    failed = failed_gates_text(registry.manifest(record).gates)
    if not force:
        raise GatesFailed(
            f"{record.ref} failed its evaluation gates ({failed}); train a better version, "
            f"or {action} it anyway with --force (recorded in the audit log)"
        )
    registry.audit(
        f"{action}_forced", record.model, {"version": record.version, "failed_gates": failed}
    )
