"""OpenID Connect bearer tokens: a JWT checked against the issuer's signing keys (JWKS),
its audience, issuer and expiry, becomes a caller with a name and roles (``serve.oidc``).

The keys are fetched once and kept; a token signed by a key not seen yet refetches them
(at most every ``REFETCH_S``), so the issuer's key rotation needs no restart."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import jwt

from dnnops.config import OidcConfig
from dnnops.registry.api_keys import ROLES, Grant, Role

KEYS_TTL_S = 600.0
REFETCH_S = 30.0
"""An unknown key id refetches the JWKS at most this often (a flood of forged ids does
not become a flood of requests to the issuer)."""
FETCH_TIMEOUT_S = 5.0


class TokenRefused(Exception):
    """The token is not one this server accepts; the message says why."""


@dataclass(frozen=True)
class OidcIdentity:
    name: str
    grants: tuple[Grant, ...]

    def allows(self, needed: Role, model: str | None = None) -> bool:
        return any(g.allows(needed, model) for g in self.grants)

    @property
    def described(self) -> str:
        return ", ".join(g.described for g in self.grants) or "no dnnops role"


@dataclass
class OidcVerifier:
    config: OidcConfig
    _keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    _fetched_at: float = float("-inf")
    _jwks_url: str | None = None
    refetch_s: float = REFETCH_S
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def identify(self, token: str) -> OidcIdentity:
        """The caller a valid token names; ``TokenRefused`` saying why otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"not a JWT: {exc}") from None
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.config.algorithms,
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(f"the token is not for audience {self.config.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused(f"the token was not issued by {self.config.issuer!r}") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"the token is invalid: {exc}") from None
        name = claims.get(self.config.name_claim) or claims.get("sub") or "unknown"
        return OidcIdentity(str(name), grants_of(claims, self.config))

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        if (kid not in self._keys and now - self._fetched_at >= self.refetch_s) or (
            now - self._fetched_at >= KEYS_TTL_S
        ):
            async with self._lock:
                if kid not in self._keys or time.monotonic() - self._fetched_at >= KEYS_TTL_S:
                    await self._fetch()
        found = self._keys.get(kid)
        if found is None:
            raise TokenRefused(f"no signing key {kid!r} in the issuer's JWKS")
        return found

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as http:
                url = self._jwks_url or await self._discover(http)
                reply = await http.get(url)
                reply.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(reply.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise TokenRefused(f"the issuer's signing keys could not be read: {exc}") from None
        self._jwks_url = url
        self._keys = {str(k.key_id or ""): k for k in keys}

    async def _discover(self, http: httpx.AsyncClient) -> str:
        if self.config.jwks_url:
            return self.config.jwks_url
        issuer = cast(str, self.config.issuer).rstrip("/")
        reply = await http.get(f"{issuer}/.well-known/openid-configuration")
        reply.raise_for_status()
        return str(reply.json()["jwks_uri"])


def grants_of(claims: dict[str, Any], config: OidcConfig) -> tuple[Grant, ...]:
    """The dnnops roles the token's ``roles_claim`` values map to (``role_map``, else the
    values that are themselves ``ROLE`` or ``ROLE:MODEL``); others are ignored."""
    found: Any = claims
    for part in config.roles_claim.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    values = [found] if isinstance(found, str) else found if isinstance(found, list) else []
    grants = []
    for value in values:
        mapped = config.role_map.get(str(value), str(value))
        role, _, model = mapped.partition(":")
        if role in ROLES:
            grants.append(Grant(role, model or None))
    return tuple(grants)
