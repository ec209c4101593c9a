"""The server's signing secrets, kept in the data dir (``stream-secrets``, mode 0600).

The first line signs; every line verifies. ``rotate`` puts a new secret first and keeps the previous
one, so URLs handed out before the rotation keep playing until they expire; ``rotate`` again drops it.

With a shared store (``REVENGE_STORE=redis://…``) the secrets are the list ``rv:stream-secrets`` there
instead (same rules), so every instance signs and verifies with the same ones: ``SharedSecrets``.
"""

from __future__ import annotations

import logging
import os
import secrets as _random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import reply_text
from revenge.security.redis_sync import SyncRedis

log = logging.getLogger("revenge.security")

FILE_NAME = "stream-secrets"
KEEP = 2  # the signing secret and the one before it


def _write(path: Path, keys: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(k.hex() + "\n" for k in keys))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_or_create(data_dir: Path) -> list[bytes]:
    path = data_dir / FILE_NAME
    if path.exists():
        try:
            keys = [bytes.fromhex(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        except ValueError:
            keys = []
        if keys and all(len(k) == 32 for k in keys):
            return keys[:KEEP]
        raise ValueError(f"{path} is damaged: expected hex 32-byte secrets, one per line")
    keys = [_random.token_bytes(32)]
    _write(path, keys)
    return keys


def rotate(data_dir: Path) -> list[bytes]:
    keys = [_random.token_bytes(32), *load_or_create(data_dir)][:KEEP]
    _write(data_dir / FILE_NAME, keys)
    return keys


# --- the shared store (REVENGE_STORE=redis://…) ---------------------------------------------------------

SHARED_KEY = "rv:stream-secrets"  # list of hex secrets, newest (signing) first, at most KEEP
REFRESH_SECONDS = 2.0  # how stale an instance's copy may get: a rotation signs everywhere within this
REREAD_MIN_SECONDS = 0.2  # a token that fails with the known secrets re-reads at most this often

# KEYS: the list. ARGV: the first secrets (hex). Created once: every instance gets the same list.
_CREATE = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('RPUSH', KEYS[1], unpack(ARGV)) end
return redis.call('LRANGE', KEYS[1], 0, {KEEP - 1})
"""
# KEYS: the list. ARGV: the new secret (hex).
_ROTATE = f"""
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, {KEEP - 1})
return redis.call('LRANGE', KEYS[1], 0, -1)
"""
KEY_GUARD_ARGS = {"EXISTS": 1, "RPUSH": 1, "LRANGE": 1, "LPUSH": 1, "LTRIM": 1}


def _decoded(values: list[bytes | str]) -> list[bytes]:
    try:
        keys = [bytes.fromhex(reply_text(v)) for v in values]
    except ValueError:
        keys = []
    if not keys or any(len(k) != 32 for k in keys):
        raise ValueError(f"{SHARED_KEY} is damaged: expected hex 32-byte secrets")
    return keys


def _file_secrets(data_dir: Path) -> list[bytes]:
    """The data dir's secrets when there is that file (a server that ran on its own before: its URLs
    keep verifying once the store has the secrets), else none."""
    return load_or_create(data_dir) if (data_dir / FILE_NAME).exists() else []


def load_or_create_shared(store: SyncRedis, data_dir: Path, key_guard: str = "") -> list[bytes]:
    """The store's secrets, created on first use (from the data dir's file if there is one, else a new
    random secret) atomically, so instances starting together agree."""
    seed = _file_secrets(data_dir) or [_random.token_bytes(32)]
    script = store.client.register_script(key_guard + _CREATE)
    values = store.run(lambda client: script(keys=[SHARED_KEY], args=[k.hex() for k in seed], client=client))
    return _decoded(values)


def rotate_shared(store: SyncRedis, data_dir: Path, key_guard: str = "") -> list[bytes]:
    load_or_create_shared(store, data_dir, key_guard)  # a rotation keeps the secret it replaces
    script = store.client.register_script(key_guard + _ROTATE)
    values = store.run(lambda client: script(keys=[SHARED_KEY], args=[_random.token_bytes(32).hex()],
                                             client=client))
    return _decoded(values)


class StreamSecrets(Protocol):
    def current(self) -> list[bytes]:
        """The secrets, newest (signing) first."""

    def after_mismatch(self) -> list[bytes] | None:
        """A token failed with ``current()``: newer secrets when there are (a rotation this instance has
        not seen yet), else None."""

    def close(self) -> None: ...


class FileSecrets:
    """The embedded default: the data dir's file, read at start (a rotation takes a restart)."""

    def __init__(self, data_dir: Path) -> None:
        self._keys = load_or_create(data_dir)

    def current(self) -> list[bytes]:
        return self._keys

    def after_mismatch(self) -> list[bytes] | None:
        return None

    def close(self) -> None:
        pass


class SharedSecrets:
    """The shared store's secrets. A thread (``start``) re-reads them every ``REFRESH_SECONDS``, so a
    ``revenge secret rotate`` on any machine signs on every instance within that time, and the request
    path never waits for the store for them. A token that fails with the known secrets re-reads them
    there (at most every ``REREAD_MIN_SECONDS``, and never while the store is known down), so a URL
    signed with the new secret by an instance that saw the rotation first verifies here at once. While
    the store is down the known secrets keep serving."""

    def __init__(self, store: SyncRedis, data_dir: Path, *, key_guard: str = "",
                 clock: Callable[[], float] = time.monotonic, interval: float = REFRESH_SECONDS) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._keys = load_or_create_shared(store, data_dir, key_guard)
        self._read_at = clock()
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._refresh_loop, name="stream-secrets", daemon=True)
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()

    def refresh(self, *, probe: bool = True) -> bool:
        """Read the secrets again; whether they changed. ``probe``: even while the store is known down
        (the thread's reads are what find it back)."""
        self._read_at = self._clock()
        try:
            keys = _decoded(self._store.run(lambda client: client.lrange(SHARED_KEY, 0, KEEP - 1),
                                            probe=probe))
        except (StoreUnavailable, ValueError) as exc:
            if not self._failing:
                log.warning("stream secrets not re-read, the known ones stay in use: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("stream secrets read again from the store")
        self._failing = False
        changed = keys != self._keys
        self._keys = keys
        return changed

    def current(self) -> list[bytes]:
        return self._keys

    def after_mismatch(self) -> list[bytes] | None:
        if self._clock() - self._read_at < REREAD_MIN_SECONDS:
            return None
        return self._keys if self.refresh(probe=False) else None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._store.close()
