"""The registry through a server (``DNNOPS_SERVER_URL``): a laptop or a CI job holds a key
(``DNNOPS_API_KEY``), never the database's credentials.

``RemoteRegistry`` and ``RemoteRuns`` answer as ``ModelRegistry`` and ``RunStore`` do, by
the server's ``/v1/registry`` routes; ``ServerArtifactStore`` moves artifacts up in chunks
that resume where an interrupted upload stopped, and down in ranges, each checked against
its SHA-256. A version's manifest and files are read and checked by the same code as a
local registry's (``VersionFiles``): the server's answer names digests, the bytes must
match them.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from dnnops.errors import DnnopsError, RunNotFound, UsageError
from dnnops.registry.artifacts import (
    ArtifactError,
    ArtifactStoreUnreachable,
    StoredArtifact,
    check_digest,
)
from dnnops.registry.runs import RunRecord
from dnnops.registry.versions import (
    Registration,
    VersionFiles,
    VersionNotFound,
    VersionRecord,
    check_registration,
)

if TYPE_CHECKING:
    from dnnops.train.recorder import RunStatus

CHUNK_BYTES = 4 * 1024 * 1024
"""One upload request's body, or one download range: under the server's default body limit
(``serve.max_body_bytes``), and what a broken connection costs to send again."""

MAX_CORRECTIONS = 20
"""Times an upload may be told to resume elsewhere before it gives up."""

API_KEY_ENV = "DNNOPS_API_KEY"
TIMEOUT_S = 60.0


class ServerRefused(UsageError):
    """The server answered 401 or 403: no key, or a key whose role does not cover this."""


class RegistryServerFailed(DnnopsError):
    """The server answered 5xx: its store or database failed (its message says which)."""


class RegistryServer:
    """An HTTP client of one server's ``/v1/registry`` routes; errors come back as the
    library's own (a 404 as ``VersionNotFound``), with the server's message."""

    def __init__(self, url: str, key: str | None, *, timeout: float = TIMEOUT_S) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        weakref.finalize(self, self._http.close)  # its connections close with it

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        not_found: type[DnnopsError] = VersionNotFound,
    ) -> Any:
        """A JSON route's answer."""
        content = None if body is None else json.dumps(body, default=str).encode()
        headers = {} if content is None else {"Content-Type": "application/json"}
        response = self.send(method, path, content=content, headers=headers, params=params)
        self.raise_for(response, not_found)
        return response.json()

    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            return self._http.request(
                method, f"/v1/registry{path}", content=content, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            raise ArtifactStoreUnreachable(
                f"cannot reach the registry server {self.url} (DNNOPS_SERVER_URL): {exc}"
            ) from None

    def raise_for(
        self, response: httpx.Response, not_found: type[DnnopsError] = VersionNotFound
    ) -> None:
        if response.is_success:
            return
        message = _message(response)
        status = response.status_code
        if status in (401, 403):
            raise ServerRefused(
                f"the registry server refused: {message} (set {API_KEY_ENV} to a key whose "
                "role covers this: dnnops keys create NAME --role deployer)"
            )
        if status == 404:
            raise not_found(message)
        if status >= 500:
            raise RegistryServerFailed(f"the registry server failed: {message}")
        raise UsageError(message)


class ServerArtifactStore:
    """The server's artifact store as an ``ArtifactStore``: digest-checked both ways."""

    def __init__(self, server: RegistryServer, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.server = server
        self.chunk_bytes = chunk_bytes

    def put(self, data: bytes) -> str:
        """Upload ``data`` unless the server holds it; resume from what it already has."""
        digest = hashlib.sha256(data).hexdigest()
        state = self.server.call("GET", f"/uploads/{digest}")
        offset, corrections = int(state["received"]), 0
        while not state["stored"]:
            chunk = data[offset : offset + self.chunk_bytes]
            response = self.server.send(
                "PUT",
                f"/uploads/{digest}",
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Upload-Offset": str(offset),
                    "Upload-Length": str(len(data)),
                },
            )
            if response.status_code == 409 and "received" in _json(response):
                corrections += 1
                if corrections > MAX_CORRECTIONS:
                    raise UsageError(
                        f"the upload of {digest[:12]}… keeps losing its place on the server "
                        "(a fleet without sticky sessions?); send the registry's writes to "
                        "one replica"
                    )
                offset = int(_json(response)["received"])  # another writer moved it: follow
                continue
            self.server.raise_for(response)
            state = response.json()
            offset = int(state["received"])
        return digest

    def get(self, digest: str, name: str = "artifact") -> bytes:
        """Download in ranges; the whole must hash to ``digest``."""
        check_digest(digest)
        parts: list[bytes] = []
        received = 0
        while True:
            end = received + self.chunk_bytes - 1
            response = self.server.send(
                "GET", f"/artifacts/{digest}", headers={"Range": f"bytes={received}-{end}"}
            )
            if response.status_code == 404:
                raise ArtifactError(
                    f"{name}: artifact {digest[:12]}… is missing from the server's store"
                )
            self.server.raise_for(response)
            parts.append(response.content)
            received += len(response.content)
            total = _total_length(response)
            if received >= total or not response.content:
                break
        data = b"".join(parts)
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(
                f"{name}: artifact {digest[:12]}… came back with other bytes than its digest "
                "(corrupted in the server's store or on the way)"
            )
        return data

    def exists(self, digest: str) -> bool:
        check_digest(digest)
        response = self.server.send("HEAD", f"/artifacts/{digest}")
        if response.status_code == 404:
            return False
        self.server.raise_for(response)
        return True

    def local_path(self, digest: str) -> Path | None:
        return None  # the bytes live on the server: read them with get

    def stored(self) -> list[StoredArtifact]:
        raise UsageError(
            "listing the artifact store needs the store itself; run dnnops models gc where "
            "DNNOPS_ARTIFACTS_URL reaches it, without DNNOPS_SERVER_URL"
        )

    def delete(self, digest: str) -> None:
        raise UsageError(
            "deleting artifacts needs the store itself; run dnnops models delete or gc "
            "without DNNOPS_SERVER_URL"
        )


class RemoteRegistry(VersionFiles):
    """A registry reached through a server; the audit log records the identity the server
    established for this key, whatever ``DNNOPS_ACTOR`` says."""

    def __init__(
        self,
        server: RegistryServer,
        signing_key: bytes | None = None,
        *,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.server = server
        self.store = ServerArtifactStore(server, chunk_bytes=chunk_bytes)
        self.signing_key = signing_key

    def register(self, request: Registration) -> VersionRecord:
        check_registration(request)  # before any upload: a bad name costs no bytes
        files = {
            name: {"sha256": self.store.put(data), "size": len(data)}
            for name, data in request.files.items()
        }
        body = {
            "source": request.source,
            "files": files,
            "manifest": dict(request.manifest),
            "metrics": dict(request.metrics),
            "gates_passed": request.gates_passed,
            "run_id": request.run_id,
            "dataset": None if request.dataset is None else dict(request.dataset),
        }
        answer = self.server.call("POST", f"/models/{_seg(request.model)}/versions", body=body)
        return _record(answer)

    def set_alias(self, model: str, alias: str, version: int, *, reason: str = "") -> None:
        self.server.call(
            "PUT",
            f"/models/{_seg(model)}/aliases/{_seg(alias)}",
            body={"version": version, "reason": reason},
        )

    def set_status(self, model: str, version: int, status: str, *, reason: str = "") -> None:
        self.server.call(
            "PUT",
            f"/models/{_seg(model)}/versions/{version}/status",
            body={"status": status, "reason": reason},
        )

    def audit(self, action: str, model: str | None, details: dict[str, Any]) -> None:
        self.server.call(
            "POST", "/audit", body={"action": action, "model": model, "details": details}
        )

    def attach(
        self, record: VersionRecord, name: str, data: bytes, *, fields: Mapping[str, Any]
    ) -> VersionRecord:
        entry = {"sha256": self.store.put(data), "size": len(data)}
        answer = self.server.call(
            "POST",
            f"/models/{_seg(record.model)}/versions/{record.version}/files",
            body={"name": name, **entry, "fields": dict(fields)},
        )
        return _record(answer)

    def resolve(self, model: str, ref: str | int) -> VersionRecord:
        return _record(self.server.call("GET", f"/models/{_seg(model)}/versions/{_seg(ref)}"))

    def versions(self, model: str) -> list[VersionRecord]:
        answer = self.server.call("GET", f"/models/{_seg(model)}/versions")
        return [_record(v) for v in answer["versions"]]

    def models(self) -> list[dict[str, Any]]:
        return list(self.server.call("GET", "/models")["models"])

    def aliases(self, model: str) -> dict[str, int]:
        answer = self.server.call("GET", f"/models/{_seg(model)}/aliases")
        return {str(k): int(v) for k, v in answer["aliases"].items()}

    def audit_log(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        return list(self.server.call("GET", "/audit", params=params)["audit"])


class RemoteRuns:
    """Training runs kept by the server's metadata store (``RunStore`` over HTTP)."""

    def __init__(self, server: RegistryServer) -> None:
        self.server = server

    def create(
        self,
        run_id: str,
        project: str,
        params: dict[str, Any],
        *,
        dataset_sha256: str,
        run_dir: Path,
        world_size: int = 1,
    ) -> None:
        body = {
            "id": run_id,
            "project": project,
            "params": params,
            "dataset_sha256": dataset_sha256,
            "run_dir": str(run_dir),
            "world_size": world_size,
        }
        self.server.call("POST", "/runs", body=body, not_found=RunNotFound)

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.server.call(
            "POST",
            f"/runs/{_seg(run_id)}/epochs",
            body={"epoch": epoch, "metrics": metrics},
            not_found=RunNotFound,
        )

    def checkpoint(self, run_id: str, step: int, epoch: int, *, path: Path, sha256: str) -> None:
        self.server.call(
            "POST",
            f"/runs/{_seg(run_id)}/checkpoints",
            body={"step": step, "epoch": epoch, "path": str(path), "sha256": sha256},
            not_found=RunNotFound,
        )

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        self.server.call(
            "PUT",
            f"/runs/{_seg(run_id)}/status",
            body={"status": status, **fields},
            not_found=RunNotFound,
        )

    def get(self, run_id: str) -> RunRecord:
        answer = self.server.call("GET", f"/runs/{_seg(run_id)}", not_found=RunNotFound)
        return RunRecord(**answer)

    def list(self, project: str | None = None, limit: int = 100) -> list[RunRecord]:
        params: dict[str, Any] = {"limit": limit}
        if project is not None:
            params["project"] = project
        answer = self.server.call("GET", "/runs", params=params, not_found=RunNotFound)
        return [RunRecord(**run) for run in answer["runs"]]


def _record(answer: Mapping[str, Any]) -> VersionRecord:
    return VersionRecord(**answer)


def _seg(value: str | int) -> str:
    """One path segment: a name cannot reach another route."""
    return quote(str(value), safe="")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _message(response: httpx.Response) -> str:
    error = _json(response).get("error")
    return str(error) if error else f"HTTP {response.status_code}: {response.text[:200]}"


def _total_length(response: httpx.Response) -> int:
    """The artifact's whole size, from ``Content-Range: bytes a-b/total`` (a 206)."""
    content_range = response.headers.get("content-range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return len(response.content)
