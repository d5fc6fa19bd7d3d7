"""Starting a rollout: the checks both the CLI and the admin route make first."""

from __future__ import annotations

from dnnops.config import RolloutConfig
from dnnops.errors import GatesFailed, UsageError
from dnnops.evaluate.gates import failed_gates_text
from dnnops.registry.versions import ModelRegistry, VersionNotFound, VersionRecord
from dnnops.rollout.policy import RolloutState, plan_steps
from dnnops.rollout.store import RolloutStore


def begin_rollout(
    store: RolloutStore,
    registry: ModelRegistry,
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


def check_gates_passed(
    registry: ModelRegistry, record: VersionRecord, force: bool, *, action: str
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
