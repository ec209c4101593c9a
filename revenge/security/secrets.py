"""The server's signing secrets, kept in the data dir (``stream-secrets``, mode 0600).

The first line signs; every line verifies. ``rotate`` puts a new secret first and keeps the previous
one, so URLs handed out before the rotation keep playing until they expire; ``rotate`` again drops it.
"""

from __future__ import annotations

import os
import secrets as _random
from pathlib import Path

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
