"""The registry over HTTP (``/v1/registry``): what ``DNNOPS_SERVER_URL`` sends the CLI and
the Python API to, so a laptop or a CI job holds a key instead of the database's password.

Reads need the ``read`` scope (open on a loopback server without credentials, as the other
read routes); writes need the ``deployer`` role, on the model when a key is limited to one.
The audit log records the identity the server established, never one the client sent.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from dnnops.registry.artifacts import ArtifactError
from dnnops.registry.runs import RunStore
from dnnops.registry.versions import Registration
from dnnops.serve.errors import BadRequest, NotFound, Unprocessable
from dnnops.serve.http import (
    Caller,
    Route,
    authorize,
    authorize_scope,
    json_object,
    json_response,
    read_body,
    require_grant,
    state_of,
)
from dnnops.serve.state import ServerState
from dnnops.serve.uploads import OffsetMismatch, UploadRejected, Uploads

DIGEST = re.compile(r"^[0-9a-f]{64}$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
UPLOAD_CHUNK_LIMIT = 16 * 1024 * 1024
"""One upload chunk's most bytes (clients send 4 MiB), whatever serve.max_body_bytes says."""
METADATA_LIMIT = 4 * 1024 * 1024
"""A registration's JSON (schema, metrics, manifest fields): no weights travel in it."""
MAX_AUDIT = 1000


# -- models and versions ---------------------------------------------------------------


async def models(request: Request) -> Response:
    """Every model (those a key limited to one model may read), newest version, aliases."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "read")
    found = await asyncio.to_thread(state.registry.models)
    return json_response({"models": [m for m in found if _visible(caller, m["name"])]})


async def versions(request: Request, name: str) -> Response:
    """A model's versions, newest first."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    records = await asyncio.to_thread(state.registry.versions, name)
    return json_response({"versions": [r.to_dict() for r in records]})


async def version(request: Request, name: str, ref: str) -> Response:
    """One version, by number or alias."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    record = await asyncio.to_thread(state.registry.resolve, name, ref)
    return json_response(record.to_dict())


async def verify(request: Request, name: str, ref: str) -> Response:
    """Check a version's manifest, signature and every file against their digests."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    record = await asyncio.to_thread(state.registry.resolve, name, ref)
    report = await asyncio.to_thread(state.registry.verify, record)
    return json_response(asdict(report))


async def register(request: Request, name: str) -> Response:
    """Deployer: a new version of ``name`` from files uploaded first (``/uploads``)."""
    state = state_of(request)
    await authorize(state, request, "deployer", model=name)
    payload = json_object(await read_body(request, METADATA_LIMIT))
    files = _files(payload.get("files"))
    registration = Registration(
        model=name,
        source=_text(payload, "source"),
        files={},
        manifest=_object(payload, "manifest"),
        metrics=_object(payload, "metrics"),
        gates_passed=_optional_bool(payload, "gates_passed"),
        run_id=_optional_text(payload, "run_id"),
        dataset=_dataset(payload.get("dataset")),
    )
    record = await asyncio.to_thread(state.registry.register_stored, registration, files)
    return json_response(record.to_dict(), 201)


async def attach(request: Request, name: str, number: int) -> Response:
    """Deployer: add an uploaded file (an INT8 graph) to a version's manifest."""
    state = state_of(request)
    await authorize(state, request, "deployer", model=name)
    payload = json_object(await read_body(request, METADATA_LIMIT))
    record = await asyncio.to_thread(state.registry.resolve, name, number)
    entry = {"sha256": _digest(_text(payload, "sha256")), "size": _int(payload, "size")}
    attached = await asyncio.to_thread(
        state.registry.attach_stored,
        record,
        _text(payload, "name"),
        entry,
        fields=_object(payload, "fields"),
    )
    return json_response(attached.to_dict(), 201)


async def set_status(request: Request, name: str, number: int) -> Response:
    """Deployer: a version's status (``failed`` after a bad rollout, ...)."""
    state = state_of(request)
    await authorize(state, request, "deployer", model=name)
    payload = json_object(await read_body(request, 64 * 1024))
    status, reason = _text(payload, "status"), _optional_text(payload, "reason") or ""
    if status in ("archived", "deleted"):
        raise BadRequest(f"status: {status!r} is set by dnnops models archive|delete")
    await asyncio.to_thread(state.registry.set_status, name, number, status, reason=reason)
    record = await asyncio.to_thread(state.registry.resolve, name, number)
    return json_response(record.to_dict())


async def aliases(request: Request, name: str) -> Response:
    """A model's aliases and the versions they point at."""
    state = state_of(request)
    await authorize_scope(state, request, "read", model=name)
    await asyncio.to_thread(state.registry.versions, name)  # 404 for an unknown model
    return json_response({"aliases": await asyncio.to_thread(state.registry.aliases, name)})


async def set_alias(request: Request, name: str, alias: str) -> Response:
    """Deployer: point ``alias`` at a version (``production`` promotes it)."""
    state = state_of(request)
    await authorize(state, request, "deployer", model=name)
    payload = json_object(await read_body(request, 64 * 1024))
    number = _int(payload, "version")
    reason = _optional_text(payload, "reason") or ""
    await asyncio.to_thread(state.registry.set_alias, name, alias, number, reason=reason)
    return json_response({"model": name, "alias": alias, "version": number})


# -- the audit log ----------------------------------------------------------------------


async def audit_log(request: Request, model: str | None = None, limit: int = 200) -> Response:
    """Newest first; a key limited to one model sees that model's entries."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "read", model=model)
    if not 0 < limit <= MAX_AUDIT:
        raise BadRequest(f"limit: 1..{MAX_AUDIT}, not {limit}")
    entries = await asyncio.to_thread(state.registry.audit_log, model, limit)
    return json_response({"audit": [e for e in entries if _visible(caller, e["model"])]})


async def record_decision(request: Request) -> Response:
    """Deployer: record a decision taken outside the registry (a replay, a retraining)."""
    state = state_of(request)
    caller = await authorize(state, request, "deployer")  # a valid key before the body
    payload = json_object(await read_body(request, METADATA_LIMIT))
    model = _optional_text(payload, "model")
    require_grant(caller, "deployer", model, what="deployer routes")
    action = _text(payload, "action")
    details = _object(payload, "details")
    await asyncio.to_thread(state.registry.audit, action, model, details)
    return json_response({"recorded": action}, 201)


# -- artifacts ----------------------------------------------------------------------------


async def upload_state(request: Request, digest: str) -> Response:
    """Deployer: how many bytes of an upload the server holds, and whether it is stored."""
    state = state_of(request)
    await authorize(state, request, "deployer")
    uploads = _uploads(state)
    return json_response((await asyncio.to_thread(uploads.state, _digest(digest))).to_dict())


async def upload_chunk(request: Request, digest: str) -> Response:
    """Deployer: append a chunk at ``Upload-Offset`` of ``Upload-Length`` bytes; a 409
    names the offset to resume from."""
    state = state_of(request)
    await authorize(state, request, "deployer")
    checked = _digest(digest)
    offset = _header_int(request, "upload-offset")
    length = _header_int(request, "upload-length")
    chunk = await read_body(request, UPLOAD_CHUNK_LIMIT)
    try:
        done = await asyncio.to_thread(
            _uploads(state).append, checked, chunk, offset=offset, length=length
        )
    except OffsetMismatch as exc:
        return json_response({"error": str(exc), "received": exc.received}, 409)
    except UploadRejected as exc:
        raise Unprocessable(str(exc)) from None
    return json_response(done.to_dict(), 201 if done.stored else 200)


async def artifact(request: Request, digest: str) -> Response:
    """An artifact's bytes, checked against their digest; ``Range: bytes=a-b`` answers a
    part (206), so a client downloads a large one in pieces and resumes."""
    state = state_of(request)
    await authorize_scope(state, request, "read")
    data = await _artifact_bytes(state, _digest(digest))
    wanted = request.headers.get("range")
    if wanted is None or not data:  # an empty artifact has no range to ask for
        return Response(data, 200, media_type="application/octet-stream")
    match = RANGE.match(wanted.strip())
    if match is None or int(match[1]) > max(len(data) - 1, 0):
        raise BadRequest(f"Range: {wanted!r} is not bytes=START-[END] within {len(data)} bytes")
    start = int(match[1])
    end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
    headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
    return Response(data[start : end + 1], 206, headers, media_type="application/octet-stream")


async def artifact_present(request: Request, digest: str) -> Response:
    """200 when the store holds the artifact, 404 otherwise."""
    state = state_of(request)
    await authorize_scope(state, request, "read")
    if not await asyncio.to_thread(state.registry.store.exists, _digest(digest)):
        return Response(b"", 404)
    return Response(b"", 200)


_LAST: dict[str, bytes] = {}
"""The artifact a client is downloading in ranges: read (and checked) once, not per range."""


async def _artifact_bytes(state: ServerState, digest: str) -> bytes:
    if digest in _LAST:
        return _LAST[digest]
    try:
        data = await asyncio.to_thread(state.registry.store.get, digest, "artifact")
    except ArtifactError as exc:
        if not await asyncio.to_thread(state.registry.store.exists, digest):
            raise NotFound(f"no artifact {digest[:12]}… in the store") from None
        raise exc
    _LAST.clear()
    _LAST[digest] = data
    return data


# -- runs ---------------------------------------------------------------------------------


async def runs(request: Request, project: str | None = None, limit: int = 100) -> Response:
    """Training runs, newest first."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "read", model=project)
    if not 0 < limit <= MAX_AUDIT:
        raise BadRequest(f"limit: 1..{MAX_AUDIT}, not {limit}")
    found = await asyncio.to_thread(_runs(state).list, project, limit)
    return json_response({"runs": [r.to_dict() for r in found if _visible(caller, r.project)]})


async def run(request: Request, run_id: str) -> Response:
    """One run: parameters, per-epoch metrics, checkpoints, status."""
    state = state_of(request)
    caller = await authorize_scope(state, request, "read")
    record = await asyncio.to_thread(_runs(state).get, run_id)
    require_grant(caller, "reader", record.project, what="read routes")
    return json_response(record.to_dict())


async def create_run(request: Request) -> Response:
    """Deployer: a training run starts (``dnnops train`` from a laptop)."""
    state = state_of(request)
    caller = await authorize(state, request, "deployer")  # a valid key before the body
    payload = json_object(await read_body(request, METADATA_LIMIT))
    project = _text(payload, "project")
    require_grant(caller, "deployer", project, what="deployer routes")
    await asyncio.to_thread(
        _runs(state).create,
        _text(payload, "id"),
        project,
        _object(payload, "params"),
        dataset_sha256=_text(payload, "dataset_sha256"),
        run_dir=Path(_text(payload, "run_dir")),
        world_size=_int(payload, "world_size"),
    )
    return json_response({"id": payload["id"]}, 201)


async def run_epoch(request: Request, run_id: str) -> Response:
    """Deployer: an epoch's metrics."""
    state = state_of(request)
    payload = await _run_write(state, request, run_id)
    metrics = {str(k): float(v) for k, v in _object(payload, "metrics").items()}
    await asyncio.to_thread(_runs(state).epoch, run_id, _int(payload, "epoch"), metrics)
    return json_response({"id": run_id})


async def run_checkpoint(request: Request, run_id: str) -> Response:
    """Deployer: a checkpoint written (its path on the training host, its SHA-256)."""
    state = state_of(request)
    payload = await _run_write(state, request, run_id)
    await asyncio.to_thread(
        _runs(state).checkpoint,
        run_id,
        _int(payload, "step"),
        _int(payload, "epoch"),
        path=Path(_text(payload, "path")),
        sha256=_digest(_text(payload, "sha256")),
    )
    return json_response({"id": run_id})


RUN_STATUSES = {"running", "finished", "failed", "interrupted", "pruned"}


async def run_status(request: Request, run_id: str) -> Response:
    """Deployer: a run's status, with its final metrics, weights digest or error."""
    state = state_of(request)
    payload = await _run_write(state, request, run_id)
    status = _text(payload, "status")
    if status not in RUN_STATUSES:
        raise BadRequest(f"status: one of {sorted(RUN_STATUSES)}, not {status!r}")
    fields = {k: payload[k] for k in ("metrics", "weights_sha256", "error") if k in payload}
    await asyncio.to_thread(_runs(state).status, run_id, status, **fields)  # type: ignore[arg-type]
    return json_response({"id": run_id, "status": status})


async def _run_write(state: ServerState, request: Request, run_id: str) -> dict[str, Any]:
    caller = await authorize(state, request, "deployer")  # a valid key before the lookup
    record = await asyncio.to_thread(_runs(state).get, run_id)
    require_grant(caller, "deployer", record.project, what="deployer routes")
    return json_object(await read_body(request, METADATA_LIMIT))


# -- helpers ------------------------------------------------------------------------------


def _runs(state: ServerState) -> RunStore:
    return RunStore(state.registry.engine)


def _uploads(state: ServerState) -> Uploads:
    return Uploads(state.uploads_dir, state.registry.store)


def _visible(caller: Caller | None, model: str | None) -> bool:
    return caller is None or caller.allows("reader", model)


def _digest(value: str) -> str:
    if not DIGEST.match(value):
        raise BadRequest(f"{value[:80]!r} is not a SHA-256 digest (64 lowercase hex digits)")
    return value


def _header_int(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isascii() or not value.isdigit():
        raise BadRequest(f"{name}: a byte count is required, not {value[:40]!r}")
    return int(value)


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name}: a non-empty string is required")
    return value


def _optional_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name}: a string or null, not {value!r}")
    return value


def _optional_bool(payload: dict[str, Any], name: str) -> bool | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{name}: true, false or null, not {value!r}")
    return value


def _int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name}: an integer is required, not {value!r}")
    return value


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name, {})
    if not isinstance(value, dict):
        raise BadRequest(f"{name}: a JSON object is required")
    return value


def _files(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not value:
        raise BadRequest("files: an object {name: {sha256, size}} of uploaded files")
    out = {}
    for name, entry in value.items():
        if not isinstance(entry, dict):
            raise BadRequest(f"files.{name}: an object with sha256 and size")
        out[str(name)] = {"sha256": _digest(_text(entry, "sha256")), "size": _int(entry, "size")}
    return out


def _dataset(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("dataset: an object with sha256, source, rows and schema, or null")
    for key in ("sha256", "source", "rows", "schema"):
        if key not in value:
            raise BadRequest(f"dataset.{key}: required")
    return value


ROUTES = [
    Route("GET", "/v1/registry/models", models),
    Route("GET", "/v1/registry/models/{name}/versions", versions),
    Route("POST", "/v1/registry/models/{name}/versions", register),
    Route("GET", "/v1/registry/models/{name}/versions/{ref}", version),
    Route("GET", "/v1/registry/models/{name}/versions/{ref}/verify", verify),
    Route("PUT", "/v1/registry/models/{name}/versions/{number}/status", set_status),
    Route("POST", "/v1/registry/models/{name}/versions/{number}/files", attach),
    Route("GET", "/v1/registry/models/{name}/aliases", aliases),
    Route("PUT", "/v1/registry/models/{name}/aliases/{alias}", set_alias),
    Route("GET", "/v1/registry/audit", audit_log),
    Route("POST", "/v1/registry/audit", record_decision),
    Route("GET", "/v1/registry/uploads/{digest}", upload_state),
    Route("PUT", "/v1/registry/uploads/{digest}", upload_chunk),
    Route("GET", "/v1/registry/artifacts/{digest}", artifact),
    Route("HEAD", "/v1/registry/artifacts/{digest}", artifact_present),
    Route("GET", "/v1/registry/runs", runs),
    Route("POST", "/v1/registry/runs", create_run),
    Route("GET", "/v1/registry/runs/{run_id}", run),
    Route("POST", "/v1/registry/runs/{run_id}/epochs", run_epoch),
    Route("POST", "/v1/registry/runs/{run_id}/checkpoints", run_checkpoint),
    Route("PUT", "/v1/registry/runs/{run_id}/status", run_status),
]
