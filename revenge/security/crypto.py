"""Secrets at rest (the scrobbling services' tokens and session keys): AES-256-GCM with a key kept in
the data dir (``secrets-key``, mode 0600, created on first use, like ``stream-secrets``).

A sealed value is ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``; the ``context`` (e.g. the user and the
service) is authenticated with it, so a value copied to another user's row does not open. With a shared
store (``REVENGE_STORE=redis://…``) the key is ``rv:secrets-key`` there instead, created once
(``SET NX``: instances starting together agree), so every instance opens what any one sealed.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from revenge.redis_scripts import reply_text
from revenge.security.redis_sync import SyncRedis

FILE_NAME = "secrets-key"
SHARED_KEY = "rv:secrets-key"
_PREFIX = "v1."
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that does not open: damaged, for another context, or sealed with another key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key>)"

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str, context: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise SealError("not a sealed value")
        body = sealed[len(_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (ValueError, InvalidTag) as exc:
            raise SealError("the sealed value does not open (damaged, another context or key)") from exc


def load_or_create_key(data_dir: Path) -> bytes:
    """The data dir's key; a new random one (written 0600, fsynced) when there is none."""
    path = data_dir / FILE_NAME
    if path.exists():
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ValueError(f"{path} is damaged: expected one hex 32-byte key")
        return key
    key = os.urandom(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    # Another process may have won the race: keep theirs (link never replaces an existing file).
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        return load_or_create_key(data_dir)
    os.unlink(tmp)
    return key


def load_or_create_shared_key(store: SyncRedis, data_dir: Path) -> bytes:
    """The shared store's key, created on first use: the data dir's key when there is that file (what a
    server sealed before it shared a store still opens), else a new random one. The data dir is not
    written."""
    seed = load_or_create_key(data_dir) if (data_dir / FILE_NAME).exists() else os.urandom(32)
    store.run(lambda client: client.set(SHARED_KEY, seed.hex(), nx=True))
    value = store.run(lambda client: client.get(SHARED_KEY))
    try:
        key = bytes.fromhex(reply_text(value)) if value is not None else b""
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"{SHARED_KEY} in the store is damaged: expected one hex 32-byte key")
    return key
