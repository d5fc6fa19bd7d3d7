"""The artifact store on real S3 semantics (moto's server, over HTTP): training publishes
there, the server loads from there, every read is checked, two writers never overwrite an
object, and a store that stops answering fails a load by name while the loaded version
serves. The last test kills the module's S3 server, so it stays last."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dnnops.errors import DnnopsError
from dnnops.home import resolve_home
from dnnops.registry.artifacts import ArtifactError, FsspecArtifactStore
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_registry
from tests.s3 import BUCKET, S3Server, s3_server
from tests.serve.conftest import start_server, train_digits

ARTIFACTS = f"s3://{BUCKET}/artifacts"
BODY = {"instances": [[0.0] * 64]}


@dataclass(frozen=True)
class S3Home:
    s3: S3Server
    home: Path
    env: dict[str, str]
    """What a dnnops process needs: the artifact URL and the S3 endpoint."""


@pytest.fixture(scope="module")
def s3_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Home]:
    """Two digits versions trained with their artifacts on S3 (the metadata in SQLite)."""
    folder = tmp_path_factory.mktemp("s3")
    with s3_server() as s3:
        env = {**s3.env, "DNNOPS_ARTIFACTS_URL": ARTIFACTS}
        train_digits(folder, folder / "home", env=env)
        train_digits(folder, folder / "home", env=env, seed=4)
        yield S3Home(s3, folder / "home", env)


@pytest.fixture
def on_s3(s3_home: S3Home, monkeypatch: pytest.MonkeyPatch) -> S3Home:
    """This process set up as the dnnops processes are."""
    for name, value in {**s3_home.env, "DNNOPS_HOME": str(s3_home.home)}.items():
        monkeypatch.setenv(name, value)
    return s3_home


def test_training_publishes_to_s3_and_every_read_is_checked(on_s3: S3Home) -> None:
    keys = on_s3.s3.keys("artifacts/sha256/")
    assert len(keys) >= 6, keys  # weights, ONNX graph, preprocessing, profile, manifests
    assert not (on_s3.home / "artifacts").exists(), "nothing went to the local folder"
    registry = open_registry(resolve_home(on_s3.home))
    loaded = load_version(registry, registry.resolve("digits", "1"))
    assert loaded.record.version == 1
    manifest = next(k for k in keys if k.endswith(loaded.record.manifest_sha256))
    client = on_s3.s3.client()
    original = client.get_object(Bucket=BUCKET, Key=manifest)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=manifest, Body=original[:-1])  # truncated
    try:
        with pytest.raises(ArtifactError, match="failed its integrity check"):
            load_version(registry, registry.resolve("digits", "1"))
    finally:
        client.put_object(Bucket=BUCKET, Key=manifest, Body=original)


def test_two_writers_of_one_artifact_never_overwrite_each_other(
    on_s3: S3Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"the same bytes, stored by two replicas at once" * 1000
    digest = hashlib.sha256(data).hexdigest()
    stores = [FsspecArtifactStore(ARTIFACTS) for _ in range(4)]
    stored: list[str] = []
    racers = [threading.Thread(target=lambda s=s: stored.append(s.put(data))) for s in stores]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert stored == [digest] * 4
    assert stores[0].get(digest) == data
    # An object that appeared under the key first (a writer we raced, or damage) is never
    # replaced by a blind write: the create is conditional (If-None-Match: *) ...
    probe = hashlib.sha256(b"x").hexdigest()
    key = f"artifacts/sha256/{probe[:2]}/{probe}"
    on_s3.s3.client().put_object(Bucket=BUCKET, Key=key, Body=b"not what the key says")
    store = FsspecArtifactStore(ARTIFACTS)
    monkeypatch.setattr(store, "exists", lambda digest: False)  # it appeared after our look
    assert store.put(b"x") == probe
    kept = on_s3.s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert kept == b"not what the key says"
    # ... and the read that follows names the damage instead of returning it
    with pytest.raises(ArtifactError, match="integrity check"):
        store.get(probe, "the probe")


def test_an_unreachable_store_fails_a_load_by_name_while_the_loaded_version_serves(
    on_s3: S3Home,
) -> None:
    server = start_server(
        on_s3.home, "--model", "digits@1", env={**on_s3.env, "DNNOPS_ADMIN_TOKEN": "t"}
    )
    try:
        infer = f"{server.url}/v1/models/digits:predict"
        assert httpx.post(infer, json=BODY, timeout=30).status_code == 200
        on_s3.s3.kill()  # the store is gone for good
        refused = httpx.post(
            f"{server.url}/v1/endpoints/digits/versions",
            json={"version": 2},
            headers={"Authorization": "Bearer t"},
            timeout=120,
        )
        served = httpx.post(infer, json=BODY, timeout=30)
    finally:
        code, output = server.stop()
    assert refused.status_code == 503, refused.text
    assert "could not be reached" in refused.json()["error"], refused.text
    assert served.status_code == 200 and served.headers["x-model-version"] == "1"
    assert code == 0, output
    with pytest.raises(DnnopsError, match="could not be reached"):
        FsspecArtifactStore(ARTIFACTS).exists("0" * 64)
