"""Encryption at rest: artifacts and log records sealed with AES-256-GCM under a data key,
the data key wrapped (AES key wrap, RFC 3394) by a key-encryption key (KEK) that never
touches the disk it protects.

A sealed blob carries what opens it, so every reader (a replica, a laptop, a restored
backup) needs only the KEK::

    MAGIC (8) | KEK id (8) | wrapped data key (40) | nonce (12) | ciphertext and tag

The KEK id is the first 8 bytes of the KEK's SHA-256, so the right key is found and a wrong
one is named. Rotation re-wraps the data key in each header under the new KEK and leaves
the ciphertext as it is (``dnnops keys rotate``): bulk data is never encrypted twice.
Tampering fails the unwrap or the GCM tag, and artifacts keep their SHA-256 check of the
plaintext after that.

The KEK comes from ``DNNOPS_ENCRYPTION_KEY_FILE`` (32 bytes, raw or base64) or
``DNNOPS_ENCRYPTION_KEY`` (base64); ``DNNOPS_ENCRYPTION_OLD_KEY_FILES`` (``:``-separated)
lists retired KEKs still readable while a rotation runs."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from dnnops.errors import DnnopsError, UsageError

MAGIC = b"\x00DNSEAL\x01"
ID_BYTES, WRAPPED_BYTES, NONCE_BYTES = 8, 40, 12
HEADER_BYTES = len(MAGIC) + ID_BYTES + WRAPPED_BYTES
KEY_FILE_ENV = "DNNOPS_ENCRYPTION_KEY_FILE"
KEY_ENV = "DNNOPS_ENCRYPTION_KEY"
OLD_KEYS_ENV = "DNNOPS_ENCRYPTION_OLD_KEY_FILES"
AAD = MAGIC
"""Bound to every ciphertext: a blob cut from another format does not open."""
CACHE = 256
"""Unwrapped data keys kept per process (one per writer process and key generation)."""


class SealError(DnnopsError):
    """A sealed blob that cannot be opened: no key, the wrong key, or tampered with."""


class KeyMissing(SealError):
    """This process lacks the key the blob was sealed under: nothing sealed can be read."""


class Tampered(SealError):
    """The blob's data key or ciphertext fails its authentication: it was modified."""


def kek_id(kek: bytes) -> bytes:
    return hashlib.sha256(kek).digest()[:ID_BYTES]


def is_sealed(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


class Sealer:
    """Seals with the current KEK's data key; opens with any KEK it was given."""

    def __init__(self, current: bytes, retired: tuple[bytes, ...] = ()) -> None:
        for key in (current, *retired):
            if len(key) != 32:
                raise UsageError(f"an encryption key must be 32 bytes, got {len(key)}")
        self.current_id = kek_id(current)
        self._keks = {kek_id(k): k for k in (current, *retired)}
        data_key = AESGCM.generate_key(bit_length=256)
        self._header = MAGIC + self.current_id + aes_key_wrap(current, data_key)
        self._aead = AESGCM(data_key)
        self._opened: dict[bytes, AESGCM] = {}
        self._lock = threading.Lock()

    def seal(self, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self._header + nonce + self._aead.encrypt(nonce, plain, AAD)

    def open(self, blob: bytes, what: str = "a sealed blob") -> bytes:
        if not is_sealed(blob) or len(blob) < HEADER_BYTES + NONCE_BYTES + 16:
            raise SealError(f"{what} is not a sealed blob")
        aead = self._data_key(blob[:HEADER_BYTES], what)
        nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], AAD)
        except InvalidTag:
            raise Tampered(f"{what} failed its authentication tag: it was modified") from None

    def rewrap(self, blob: bytes, what: str = "a sealed blob") -> bytes | None:
        """``blob`` with its data key wrapped by the current KEK, the ciphertext unchanged;
        None when it already is."""
        header = blob[:HEADER_BYTES]
        if header[len(MAGIC) : len(MAGIC) + ID_BYTES] == self.current_id:
            return None
        data_key = self._unwrap(header, what)
        current = self._keks[self.current_id]
        return MAGIC + self.current_id + aes_key_wrap(current, data_key) + blob[HEADER_BYTES:]

    def _data_key(self, header: bytes, what: str) -> AESGCM:
        with self._lock:
            found = self._opened.get(header)
        if found is None:
            found = AESGCM(self._unwrap(header, what))
            with self._lock:
                if len(self._opened) >= CACHE:
                    self._opened.clear()
                self._opened[header] = found
        return found

    def _unwrap(self, header: bytes, what: str) -> bytes:
        identity = header[len(MAGIC) : len(MAGIC) + ID_BYTES]
        kek = self._keks.get(identity)
        if kek is None:
            raise KeyMissing(
                f"{what} is sealed under key {identity.hex()}, which this process does not "
                f"have (it has {', '.join(k.hex() for k in self._keks)}); set {KEY_FILE_ENV} "
                f"to it, or list it in {OLD_KEYS_ENV} while rotating"
            )
        try:
            return aes_key_unwrap(kek, header[len(MAGIC) + ID_BYTES :])
        except InvalidUnwrap:
            raise Tampered(f"{what}: its data key does not unwrap: it was modified") from None


def sealer_from(environ: Mapping[str, str]) -> Sealer | None:
    """The sealer the environment asks for; None when no key is set (no encryption)."""
    current = current_key(environ)
    if current is None:
        return None
    retired = tuple(
        read_key_file(Path(p)) for p in environ.get(OLD_KEYS_ENV, "").split(":") if p.strip()
    )
    return Sealer(current, retired)


@functools.cache
def process_sealer() -> Sealer | None:
    """This process's sealer, read from its environment once."""
    return sealer_from(os.environ)


def reset_process_sealer() -> None:
    """Forget the cached sealer (after the environment changed: tests, ``keys rotate``)."""
    process_sealer.cache_clear()


def open_if_sealed(blob: bytes, what: str) -> bytes:
    """``blob`` opened when sealed, as it is otherwise (data written before encryption)."""
    if not is_sealed(blob):
        return blob
    sealer = process_sealer()
    if sealer is None:
        raise KeyMissing(f"{what} is encrypted: set {KEY_FILE_ENV} to the key it was sealed with")
    return sealer.open(blob, what)


def current_key(environ: Mapping[str, str]) -> bytes | None:
    """The KEK the environment names (``DNNOPS_ENCRYPTION_KEY_FILE``, else
    ``DNNOPS_ENCRYPTION_KEY``); None when neither is set."""
    path = environ.get(KEY_FILE_ENV)
    if path:
        return read_key_file(Path(path))
    text = environ.get(KEY_ENV)
    return _decoded(text.encode(), KEY_ENV) if text else None


def read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"encryption key file {path}: {exc.strerror or exc}") from None
    return data if len(data) == 32 else _decoded(data.strip(), str(path))


def _decoded(text: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise UsageError(
            f"{where}: an encryption key is 32 random bytes, raw or base64 "
            "(make one with: head -c 32 /dev/urandom | base64)"
        )
    return key


def new_key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def s3_encryption(url: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """S3's server-side encryption for a bucket that asks for it (``DNNOPS_S3_SSE``:
    ``AES256`` or ``aws:kms``, with ``DNNOPS_S3_SSE_KMS_KEY_ID``), passed to every write."""
    env = os.environ if environ is None else environ
    mode = env.get("DNNOPS_S3_SSE")
    if not mode or not url.startswith(("s3://", "s3a://")):
        return {}
    extra = {"ServerSideEncryption": mode}
    if env.get("DNNOPS_S3_SSE_KMS_KEY_ID"):
        extra["SSEKMSKeyId"] = env["DNNOPS_S3_SSE_KMS_KEY_ID"]
    return {"s3_additional_kwargs": extra}
