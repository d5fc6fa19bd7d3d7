"""What the prediction log keeps of a sensitive feature: a keyed hash, or nothing.

A plain hash of a low-entropy value (an age, a postcode) is reversed by hashing every
candidate, so the hash is an HMAC-SHA256 under a secret key: the home's ``redact.key``
(made on first use, readable by its owner only) or ``DNNOPS_REDACT_KEY`` (the same on every
replica of a fleet). Equal values hash equal under one key, so a redacted column can still
be counted and joined, never read back.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

REDACT_KEY_ENV = "DNNOPS_REDACT_KEY"
KEY_FILE = "redact.key"
HASH_PREFIX = "hmac:"

Mode = Literal["hash", "drop"]


@dataclass(frozen=True)
class Redaction:
    names: frozenset[str]
    mode: Mode
    key: bytes

    def rows(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` (one object per instance, keyed by feature) with the sensitive
        features hashed or left out."""
        return [self._row(row) for row in rows]

    def _row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if self.mode == "drop":
            return {k: v for k, v in row.items() if k not in self.names}
        return {k: (self.hash(v) if k in self.names else v) for k, v in row.items()}

    def hash(self, value: Any) -> str | None:
        if value is None or value != value:  # missing stays missing (NaN != NaN)
            return None
        digest = hmac.new(self.key, str(value).encode(), hashlib.sha256).hexdigest()
        return HASH_PREFIX + digest[:32]


def redaction_key(home: Path) -> bytes:
    """The key redacted values are hashed with: ``DNNOPS_REDACT_KEY``, else the home's
    key file, made (32 random bytes, mode 0600) the first time."""
    given = os.environ.get(REDACT_KEY_ENV)
    if given:
        return given.encode()
    path = home / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as file:
        file.write(key)
    return key


def redaction_for(names: frozenset[str], mode: Mode, home: Path) -> Redaction | None:
    """The redaction of a version whose sensitive features are ``names``; None if none."""
    if not names:
        return None
    return Redaction(names, mode, redaction_key(home) if mode == "hash" else b"")
