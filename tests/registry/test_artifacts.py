from __future__ import annotations

from pathlib import Path

import pytest

from dnnops.registry.artifacts import ArtifactError, open_store


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_round_trip_and_deduplication(kind: str, tmp_path: Path) -> None:
    url = str(tmp_path / "store") if kind == "local" else f"memory://dnnops-{tmp_path.name}"
    store = open_store(url)
    digest = store.put(b"weights")
    assert store.put(b"weights") == digest
    assert store.get(digest) == b"weights"
    assert store.exists(digest)


def test_tampered_and_truncated_files_are_refused_by_name(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    digest = store.put(b"0123456789" * 100)
    path = store.local_path(digest)
    assert path is not None
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.onnx .*integrity check"):
        store.get(digest, "model.onnx")
    path.write_bytes(b"0123")
    with pytest.raises(ArtifactError, match="4 bytes"):
        store.get(digest, "model.onnx")
    path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        store.get(digest, "model.onnx")


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "ab", "A" * 64, "0" * 63 + "/"])
def test_keys_that_are_not_digests_cannot_reach_the_filesystem(key: str, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    with pytest.raises(ArtifactError, match="not a SHA-256 digest"):
        store.get(key)
