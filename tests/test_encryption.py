"""Encryption at rest: a version's artifacts and a real server's prediction log sealed with
AES-GCM under a data key wrapped by a key-encryption key from a file; read back with it,
refused by name without it; a flipped byte detected; the key rotated by re-wrapping each
header while the ciphertext stays byte for byte; S3's server-side encryption passed on."""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

import dnnops
from dnnops.encryption import (
    HEADER_BYTES,
    KEY_FILE_ENV,
    MAGIC,
    KeyMissing,
    Sealer,
    reset_process_sealer,
)
from dnnops.home import resolve_home
from dnnops.predlog.frames import HEADER, SEALED, FrameStats, iter_frames
from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.registry.artifacts import ESCAPED, ArtifactError, FsspecArtifactStore
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_registry
from tests.conftest import CliResult
from tests.s3 import BUCKET, s3_server
from tests.serve.conftest import start_server


def key_file(folder: Path, name: str, *, as_text: bool = False) -> Path:
    path = folder / name
    key = os.urandom(32)
    path.write_bytes(base64.b64encode(key) if as_text else key)
    return path


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path | None], None]]:
    """Set (or clear) this process's encryption key, as a user's environment does."""

    def use(path: Path | None) -> None:
        if path is None:
            monkeypatch.delenv(KEY_FILE_ENV, raising=False)
        else:
            monkeypatch.setenv(KEY_FILE_ENV, str(path))
        reset_process_sealer()

    yield use
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    reset_process_sealer()


def test_artifacts_and_logs_are_sealed_read_back_tamper_checked_and_rotated(
    tmp_path: Path,
    keyed: Callable[[Path | None], None],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = key_file(tmp_path, "old.key"), key_file(tmp_path, "new.key", as_text=True)
    home = tmp_path / "home"
    keyed(old)
    reference = np.random.default_rng(0).normal(size=(80, 4)).astype("float32")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    dnnops.log_model(model, name="sealed", reference=reference, home=home)
    registry = open_registry(resolve_home(home))
    record = registry.resolve("sealed", 1)
    blobs = sorted(p for p in (home / "artifacts").rglob("*") if p.is_file())
    assert blobs and all(p.read_bytes().startswith(MAGIC) for p in blobs), "every file sealed"
    assert load_version(registry, record).record.version == 1, "read back with the key"

    server = start_server(home, "--model", "sealed@1", env={KEY_FILE_ENV: str(old)})
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for row in reference[:20]:
                reply = http.post("/v1/models/sealed:predict", json={"instances": [row.tolist()]})
                assert reply.status_code == 200, reply.text
    finally:
        server.stop()
    segments = sorted((home / "logs" / PREDICTIONS).glob("*.log"))
    raw = b"".join(p.read_bytes() for p in segments)
    assert b'"output"' not in raw and raw.count(SEALED) == 20, "each record sealed"
    assert len(list(read_predictions(home / "logs" / PREDICTIONS))) == 20

    keyed(None)
    with pytest.raises(KeyMissing, match=KEY_FILE_ENV):
        list(read_predictions(home / "logs" / PREDICTIONS))
    with pytest.raises(ArtifactError, match="encrypted"):
        load_version(registry, record)

    keyed(old)
    target = blobs[0]
    original = target.read_bytes()
    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    assert not registry.verify(record).ok and "modified" in " ".join(
        registry.verify(record).problems
    )
    target.write_bytes(original)
    stats = FrameStats()
    tampered = _flip_in_first_frame(segments[0].read_bytes())
    segments[0].write_bytes(tampered)
    assert len(list(iter_frames(tampered, stats))) == 19 and stats.tampered == 1

    before = {p: p.read_bytes() for p in blobs}
    for segment in segments:
        os.utime(segment, (0, 0))  # closed long ago: rotation may rewrite them
    monkeypatch.setenv(KEY_FILE_ENV, str(new))
    reset_process_sealer()
    done = cli("keys", "rotate", "--old-key-file", str(old), "--home", str(home), "--json")
    assert done.code == 0, done.err
    assert '"rewrapped": ' in done.out and '"left": []' in done.out
    for path, blob in before.items():
        after = path.read_bytes()
        assert after[HEADER_BYTES:] == blob[HEADER_BYTES:], "the ciphertext is untouched"
        assert after[:HEADER_BYTES] != blob[:HEADER_BYTES], "its data key re-wrapped"
    keyed(new)  # the old key is gone: everything still reads
    assert load_version(registry, record).record.version == 1
    assert len(list(read_predictions(home / "logs" / PREDICTIONS))) == 19
    again = cli("keys", "rotate", "--old-key-file", str(old), "--home", str(home), "--json")
    assert '"rewrapped": 0' in again.out


def _flip_in_first_frame(data: bytes) -> bytes:
    """Flip one ciphertext byte of the first frame and fix its CRC: only the seal sees it."""
    _, length, _ = HEADER.unpack_from(data, 0)
    payload = bytearray(data[HEADER.size : HEADER.size + length])
    payload[-1] ^= 1
    head = HEADER.pack(data[:4], length, zlib.crc32(bytes(payload)))
    return head + bytes(payload) + data[HEADER.size + length :]


def test_a_wrong_key_is_named_and_a_short_key_refused(tmp_path: Path) -> None:
    sealed = Sealer(os.urandom(32)).seal(b"inputs")
    other = Sealer(os.urandom(32))
    with pytest.raises(KeyMissing, match="sealed under key"):
        other.open(sealed)
    with pytest.raises(Exception, match="32 bytes"):
        Sealer(b"short")


def test_s3_server_side_encryption_is_asked_for_on_every_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with s3_server() as s3:
        for name, value in {**s3.env, "DNNOPS_S3_SSE": "AES256"}.items():
            monkeypatch.setenv(name, value)
        store = FsspecArtifactStore(f"s3://{BUCKET}/artifacts")
        digest = store.put(b"weights")
        key = f"artifacts/sha256/{digest[:2]}/{digest}"
        head = s3.client().head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert store.get(digest) == b"weights"


@pytest.mark.parametrize("sealed", [False, True], ids=["clear store", "sealed store"])
def test_clear_bytes_that_begin_like_a_seal_come_back_as_they_were(
    tmp_path: Path, keyed: Callable[[Path | None], None], sealed: bool
) -> None:
    """A plaintext artifact is never taken for a sealed one: one that begins with the
    seal's mark (or the escape's) is stored escaped, and read back unchanged."""
    keyed(key_file(tmp_path, "kek") if sealed else None)
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    for data in (MAGIC + b"not a seal", ESCAPED + b"not an escape", ESCAPED, b"plain"):
        digest = store.put(data)
        assert store.get(digest) == data
        stored = store.stored_bytes(digest)
        escaped = data != b"plain"
        assert stored.startswith(MAGIC) if sealed else stored.startswith(ESCAPED) == escaped
