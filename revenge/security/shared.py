"""Where the security state lives, from the settings: the data dir (the embedded default: ``users.db``,
``stream-secrets``, ``secrets-key``) or, with ``store = "redis://…"``, the shared store, so that several
instances share users, keys and secrets (and the CLI changes them for all)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from revenge.security import crypto
from revenge.security import secrets as stream_secrets
from revenge.security.keys import UserDirectory, UserStore
from revenge.security.redis_sync import SyncRedis
from revenge.security.users_redis import RedisUserStore

if TYPE_CHECKING:
    from revenge.config import Settings

USERS_DB = "users.db"
MERGED = "users.db.merged"


def is_shared(settings: Settings) -> bool:
    return settings.store != "sqlite"


def shared_store(settings: Settings, name: str) -> SyncRedis:
    return SyncRedis(settings.store, settings.store_timeout_seconds, name)


def open_user_store(settings: Settings) -> UserDirectory:
    """The user directory the settings name. The shared one first takes in the data dir's ``users.db``
    (a server from before the users were shared), ids and keys kept, and renames it ``users.db.merged``:
    merged once, so a user removed later does not come back with the next start."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    local_path = settings.data_dir / USERS_DB
    if not is_shared(settings):
        return UserStore(local_path)
    users = RedisUserStore(settings.store, settings.store_timeout_seconds)
    try:
        if local_path.exists():
            local = UserStore(local_path)
            try:
                users.merge_users(local.dump(), str(local_path))
            finally:
                local.close()
            for suffix in ("", "-wal", "-shm"):
                old = local_path.with_name(USERS_DB + suffix)
                if old.exists():
                    old.rename(local_path.with_name(MERGED + suffix))
    except BaseException:
        users.close()
        raise
    return users


def open_stream_secrets(settings: Settings) -> stream_secrets.StreamSecrets:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not is_shared(settings):
        return stream_secrets.FileSecrets(settings.data_dir)
    # Down until the refresh thread reads again: token checks never wait on a store known down.
    store = SyncRedis(settings.store, settings.store_timeout_seconds, "secrets", down_seconds=math.inf)
    try:
        shared = stream_secrets.SharedSecrets(store, settings.data_dir)
    except BaseException:
        store.close()
        raise
    shared.start()
    return shared


def rotate_stream_secrets(settings: Settings) -> list[bytes]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not is_shared(settings):
        return stream_secrets.rotate(settings.data_dir)
    store = shared_store(settings, "secrets")
    try:
        return stream_secrets.rotate_shared(store, settings.data_dir)
    finally:
        store.close()


def secrets_key(settings: Settings) -> bytes:
    """The key of ``crypto.SecretBox`` (the scrobbling services' secrets at rest)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not is_shared(settings):
        return crypto.load_or_create_key(settings.data_dir)
    store = shared_store(settings, "secrets")
    try:
        return crypto.load_or_create_shared_key(store, settings.data_dir)
    finally:
        store.close()
