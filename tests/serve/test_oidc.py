"""OIDC bearer tokens: JWTs signed by a key this test makes, served as a JWKS from a real
HTTP server on 127.0.0.1 behind the issuer's discovery document. Accepted when the
signature, audience, issuer and expiry hold; each wrong one refused by name; roles from a
nested claim and a role map, limited to a model where the map says so; the audit log
names the token's subject, never what the client claims."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dnnops.config import OidcConfig
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.registry.open import open_registry
from dnnops.serve.launch import refuse_open_bind
from dnnops.serve.oidc import OidcVerifier, TokenRefused
from tests.serve.conftest import Server, start_server

AUDIENCE = "dnnops-prod"
INFER = "/v2/models/digits/infer"
BODY = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}


@dataclass
class Issuer:
    """An identity provider's public face: discovery document and JWKS, on 127.0.0.1."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        found = []
        for kid, key in self.keys.items():
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            found.append({**public, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": found}

    def token(self, kid: str = "k1", *, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "u-1", "iat": now, "exp": now + 300}
        body.update(claims)
        signing = key or self.keys[kid]
        return jwt.encode(body, signing, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    found.add_key("k1")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": found.url, "jwks_uri": f"{found.url}/jwks"}
            elif self.path == "/jwks":
                found.fetches += 1
                body = found.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def guarded(
    trained_home: Path, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = tmp_path_factory.mktemp("oidc") / "dnnops.yaml"
    config.write_text(
        "name: digits\ndata: {source: 'builtin:digits'}\n"
        f"serve: {{oidc: {{issuer: '{issuer.url}', audience: {AUDIENCE}, "
        "roles_claim: realm_access.roles, name_claim: email, "
        "role_map: {ml-deployers: deployer, fraud-labellers: 'labeler:fraud'}}}\n"
    )
    env = {"DNNOPS_ADMIN_TOKEN": "", "DNNOPS_LABELS_TOKEN": "", "DNNOPS_READ_TOKEN": ""}
    running = start_server(trained_home, "-c", str(config), env=env)
    yield running
    running.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def roles(*names: str) -> dict[str, Any]:
    return {"realm_access": {"roles": list(names)}}


def test_tokens_are_accepted_only_with_signature_audience_issuer_and_expiry(
    guarded: Server, issuer: Issuer
) -> None:
    monitor = "/v1/monitor/digits"
    reader = roles("reader")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "audience": issuer.token(aud="someone-else", **reader),
        "issued by": issuer.token(iss="https://evil.example", **reader),
        "expired": issuer.token(exp=int(time.time()) - 120, **reader),
        "Signature": issuer.token(key=stranger, **reader),
        "no signing key": issuer.token("k9", key=stranger, **reader),
        "alg": jwt.encode({"iss": issuer.url, "aud": AUDIENCE}, "x" * 32, algorithm="HS256",
                          headers={"kid": "k1"}),
    }  # fmt: skip
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        assert http.post(INFER, json=BODY).status_code == 200, "inference stays open"
        assert http.get(monitor).status_code == 401
        assert http.get(monitor, headers=bearer(issuer.token(**reader))).status_code == 200
        for reason, token in refused.items():
            answer = http.get(monitor, headers=bearer(token))
            assert answer.status_code == 401 and reason in answer.json()["error"], (reason, answer)
        nobody = http.get(monitor, headers=bearer(issuer.token(**roles("staff"))))
        assert nobody.status_code == 403 and "no dnnops role" in nobody.json()["error"]
        rollback = "/v1/endpoints/digits/rollback"
        as_reader = http.post(rollback, headers=bearer(issuer.token(**reader)))
        assert as_reader.status_code == 403 and "deployer" in as_reader.json()["error"]
    assert issuer.fetches == 1, "the keys were fetched once and kept"


def test_roles_come_from_the_claim_and_the_audit_log_names_the_subject(
    guarded: Server, issuer: Issuer
) -> None:
    deployer = issuer.token(email="dana@example.com", **roles("ml-deployers"))
    fraud_only = issuer.token(email="fred@example.com", **roles("fraud-labellers"))
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        pid = http.post(INFER, json=BODY).headers["x-prediction-id"]
        labels = {"labels": [{"prediction_id": pid, "label": 3}]}
        other = http.post("/v1/feedback", json=labels, headers=bearer(fraud_only))
        assert other.status_code == 403 and "labels[0]" in other.json()["error"], other.text
        claimed = {**bearer(deployer), "x-actor": "mallory"}
        assert http.post("/v1/feedback", json=labels, headers=claimed).status_code == 200
        relabel = {"labels": [{"prediction_id": pid, "label": 4}]}
        assert http.post("/v1/feedback", json=relabel, headers=claimed).status_code == 200
        rollback = http.post("/v1/endpoints/digits/rollback", headers=bearer(deployer))
        assert rollback.status_code == 409, rollback.text  # let in: nothing to roll back
    audit = open_registry(resolve_home(guarded.home)).audit_log("digits", limit=20)
    [entry] = [e for e in audit if e["action"] == "relabel"]
    assert entry["actor"] == "oidc:dana@example.com"


def test_a_rotated_key_is_fetched_when_a_token_names_it(issuer: Issuer) -> None:
    config = OidcConfig(issuer=issuer.url, audience=AUDIENCE)
    verifier = OidcVerifier(config, refetch_s=0.0)

    async def check() -> None:
        first = await verifier.identify(issuer.token(roles=["admin"]))
        assert first.allows("admin") and first.name == "u-1"
        issuer.add_key("k2")
        rotated = await verifier.identify(issuer.token("k2", roles=["labeler:digits"]))
        assert rotated.allows("labeler", "digits") and not rotated.allows("labeler", "fraud")
        assert not rotated.allows("deployer", "digits")
        with pytest.raises(TokenRefused, match="not for audience"):
            await verifier.identify(issuer.token("k2", aud="other"))

    asyncio.run(check())


def test_serving_beyond_loopback_is_allowed_with_an_identity_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DNNOPS_ADMIN_TOKEN", "DNNOPS_LABELS_TOKEN", "DNNOPS_READ_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UsageError, match=r"serve\.oidc"):
        refuse_open_bind("0.0.0.0", insecure=False)
    refuse_open_bind("0.0.0.0", insecure=False, identities=True)


def test_an_issuer_without_an_audience_is_refused_in_the_project_file() -> None:
    with pytest.raises(ValueError, match="audience"):
        OidcConfig(issuer="https://login.example.com")
    with pytest.raises(ValueError, match="public-key"):
        OidcConfig(issuer="https://login.example.com", audience="a", algorithms=["HS256"])
