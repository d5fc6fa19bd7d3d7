"""Names every package shares, defined once so that a key means the same everywhere.

This module imports nothing from dnnops: any layer may use it.
"""

from __future__ import annotations

from typing import Literal

VersionKey = tuple[str, str, str]
"""(endpoint, model, version): one served version of one endpoint."""

Role = Literal["served", "shadow"]
"""Whether a record answered a client or mirrored a request to a shadow."""

Task = Literal["classification", "regression"]
"""What a model predicts: a class (labels of any type) or a number."""

GroupKey = tuple[str, str, str, str]
"""(endpoint, model, version, role): what the digests keep apart."""

RolloutStatus = Literal["awaiting_approval", "running", "promoted", "rolled_back", "aborted"]
"""Where a rollout stands; the first two are in progress (``ACTIVE_ROLLOUT``)."""

ACTIVE_ROLLOUT: tuple[RolloutStatus, ...] = ("awaiting_approval", "running")
"""The statuses of a rollout in progress: an endpoint has at most one."""

AlertSeverity = Literal["page", "ticket"]
"""A page wakes someone; a ticket waits for working hours."""

AlertStatus = Literal["pending", "firing", "resolved"]
