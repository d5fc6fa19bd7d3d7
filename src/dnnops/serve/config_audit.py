"""An endpoint's configuration is part of what it does: a server that starts with serving,
monitoring, objective, rollout or retraining settings unlike the last ones audited for
its model writes an ``endpoint_config`` entry naming each setting that changed, so "who
changed the canary step at 3 am" has an answer. URLs (webhooks may carry secrets) are kept
as digests: a change is seen, the secret is not written."""

from __future__ import annotations

import hashlib
from typing import Any

from dnnops.config import ProjectConfig
from dnnops.registry.versions import ModelRegistry

SECTIONS = {"serve", "monitor", "slo", "rollout", "retrain", "logs"}
ACTION = "endpoint_config"


def audit_config_change(registry: ModelRegistry, project: ProjectConfig | None) -> list[str]:
    """Audit the project's endpoint settings when they differ from the last audited ones;
    the dotted names of the settings that changed (every one, the first time)."""
    if project is None:
        return []
    current = flatten(project.model_dump(mode="json", include=SECTIONS))
    previous = _last(registry, project.name)
    changed = sorted(
        k for k in current.keys() | previous.keys() if current.get(k) != previous.get(k)
    )
    if changed:
        registry.audit(
            ACTION,
            project.name,
            {
                "changed": changed,
                "settings": current,
                "before": {k: previous.get(k) for k in changed},
            },
        )
    return changed


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; a URL as its digest."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    name = prefix.rstrip(".")
    if name.endswith("url") and isinstance(value, str):
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]
    return {name: value}


def _last(registry: ModelRegistry, model: str) -> dict[str, Any]:
    for entry in registry.audit_log(model, limit=500):
        if entry["action"] == ACTION:
            settings: dict[str, Any] = entry["details"].get("settings", {})
            return settings
    return {}
