"""Who calls, for the routes that ask: a shared token (``DNNOPS_ADMIN_TOKEN``,
``DNNOPS_LABELS_TOKEN``, ``DNNOPS_READ_TOKEN``, as before) or a named API key
(``dnnops keys create``), resolved to a name and a role, cached a few seconds so a request
costs no query, and a revocation takes hold within those seconds. The identity is set for
the request (``registry.actor.ACTOR``), so the audit log records it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from dnnops.registry.api_keys import ApiKey, KeyStore

CACHE_S = 5.0
"""How long a key's verdict (and whether any key exists) is kept: a revoked key is
refused within this."""


@dataclass
class KeyAuth:
    store: KeyStore
    _known: dict[str, tuple[float, ApiKey | None]] = field(default_factory=dict)
    _any: tuple[float, bool] = (-CACHE_S, False)

    async def any(self) -> bool:
        """Whether keys were issued: a server with keys asks every route for one."""
        now = time.monotonic()
        at, found = self._any
        if now - at >= CACHE_S:
            found = await asyncio.to_thread(self.store.any)
            self._any = (now, found)
        return found

    async def identify(self, secret: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._known.get(secret)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        found = await asyncio.to_thread(self.store.identify, secret)
        if len(self._known) > 10_000:  # bounded: made-up keys cannot fill memory
            self._known.clear()
        self._known[secret] = (now, found)
        return found
