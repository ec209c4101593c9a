"""The stream-signing secrets and the secrets-key in the shared store (a real redis-server, scripts under
the key guard): created once for every instance (from the data dir's files when a server had them),
rotated there, re-read by every instance within seconds (and at once for a token signed with a newer
secret), and the known secrets keep serving while the store is down."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import key_guard_lua
from revenge.security import crypto
from revenge.security import secrets as stream_secrets
from revenge.security.redis_sync import SyncRedis
from revenge.security.secrets import SharedSecrets, load_or_create_shared, rotate_shared
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture)
)
from tests.waits import wait_until

GUARD = key_guard_lua(stream_secrets.KEY_GUARD_ARGS)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(server: RedisServer) -> SyncRedis:
    return SyncRedis(server.url, 1.0, "secrets")


def test_created_once_for_every_instance_and_nothing_written_to_the_data_dir(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    dirs = [tmp_path / f"d{n}" for n in range(6)]
    for d in dirs:
        d.mkdir()
    found: list[list[bytes]] = []
    barrier = threading.Barrier(len(dirs))

    def start(d: Path) -> None:
        barrier.wait()
        found.append(load_or_create_shared(store(redis_server), d, GUARD))

    threads = [threading.Thread(target=start, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(found) == 6 and all(f == found[0] for f in found) and len(found[0]) == 1
    assert all(not any(d.iterdir()) for d in dirs)


def test_the_data_dirs_secrets_seed_the_store(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    local = stream_secrets.rotate(tmp_path)  # a server that ran on its own: two secrets
    assert load_or_create_shared(store(redis_server), tmp_path, GUARD) == local
    other = tmp_path / "other"
    other.mkdir()
    stream_secrets.load_or_create(other)  # a later instance's own file does not replace them
    assert load_or_create_shared(store(redis_server), other, GUARD) == local


def test_rotation_keeps_the_previous_secret_then_drops_it(redis_server: RedisServer,  # noqa: F811
                                                          tmp_path: Path) -> None:
    first = load_or_create_shared(store(redis_server), tmp_path, GUARD)
    rotated = rotate_shared(store(redis_server), tmp_path, GUARD)
    assert len(rotated) == 2 and rotated[1:] == first and rotated[0] != first[0]
    again = rotate_shared(store(redis_server), tmp_path, GUARD)
    assert len(again) == 2 and again[1] == rotated[0]
    fresh = tmp_path / "fresh-server"
    fresh.mkdir()
    assert rotate_shared(SyncRedis(redis_server.url, 1.0, "x"), fresh, GUARD)[1:] == again[:1]


def test_instances_pick_up_a_rotation_without_restart(redis_server: RedisServer,  # noqa: F811
                                                      tmp_path: Path) -> None:
    clock = Clock()
    seen = SharedSecrets(store(redis_server), tmp_path, key_guard=GUARD, clock=clock)
    before = seen.current()
    rotated = rotate_shared(store(redis_server), tmp_path, GUARD)
    assert seen.current() == before  # read at most every REFRESH_SECONDS…
    # …but a token that fails with the known secrets re-reads (at most every REREAD_MIN_SECONDS)
    assert seen.after_mismatch() is None
    clock.now += stream_secrets.REREAD_MIN_SECONDS
    assert seen.after_mismatch() == rotated
    assert seen.current() == rotated
    clock.now += stream_secrets.REREAD_MIN_SECONDS
    assert seen.after_mismatch() is None  # nothing newer: a bad token is just bad
    later = rotate_shared(store(redis_server), tmp_path, GUARD)
    assert seen.refresh() and seen.current() == later  # what the thread does every REFRESH_SECONDS
    seen.close()


def test_the_refresh_thread_picks_up_a_rotation(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    seen = SharedSecrets(store(redis_server), tmp_path, key_guard=GUARD, interval=0.05)
    seen.start()
    try:
        rotated = rotate_shared(store(redis_server), tmp_path, GUARD)
        wait_until(lambda: seen.current() == rotated, "the thread to read the rotation", timeout=10)
    finally:
        seen.close()


def test_the_known_secrets_keep_serving_while_the_store_is_down(redis_server: RedisServer,  # noqa: F811
                                                                tmp_path: Path) -> None:
    clock = Clock()
    down_until_probed = SyncRedis(redis_server.url, 1.0, "secrets", down_seconds=math.inf)
    seen = SharedSecrets(down_until_probed, tmp_path, key_guard=GUARD, clock=clock)
    known = seen.current()
    redis_server.stop()
    assert not seen.refresh() and seen.current() == known
    clock.now += stream_secrets.REREAD_MIN_SECONDS
    assert seen.after_mismatch() is None
    redis_server.start()
    rotated = rotate_shared(store(redis_server), tmp_path, GUARD)
    clock.now += stream_secrets.REREAD_MIN_SECONDS
    assert seen.after_mismatch() is None  # known down: a bad token does not wait for the store…
    with pytest.raises(StoreUnavailable, match="is down"):
        down_until_probed.run(lambda client: client.ping())
    assert seen.refresh() and seen.current() == rotated  # …until the thread's read finds it back
    clock.now += stream_secrets.REREAD_MIN_SECONDS
    assert seen.after_mismatch() is None and down_until_probed.run(lambda client: client.ping())
    seen.close()


def test_a_damaged_list_is_refused_at_start(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    s = store(redis_server)
    s.client.rpush(stream_secrets.SHARED_KEY, "zz")
    with pytest.raises(ValueError, match="damaged"):
        SharedSecrets(s, tmp_path)


# --- the secrets-key (crypto.SecretBox) ---------------------------------------------------------------

def test_the_secrets_key_is_shared_and_seeded_from_the_data_dir(redis_server: RedisServer,  # noqa: F811
                                                                tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    local = crypto.load_or_create_key(one)  # what the first server sealed with, before it shared a store
    assert crypto.load_or_create_shared_key(store(redis_server), one) == local
    assert crypto.load_or_create_shared_key(store(redis_server), two) == local
    assert not any(two.iterdir())  # nothing written to the data dir
    sealed = crypto.SecretBox(local).seal("token", "u1:listenbrainz")
    opened_by_two = crypto.SecretBox(crypto.load_or_create_shared_key(store(redis_server), two))
    assert opened_by_two.open(sealed, "u1:listenbrainz") == "token"


def test_a_new_store_gets_a_random_secrets_key_and_a_damaged_one_is_refused(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    key = crypto.load_or_create_shared_key(store(redis_server), data)
    assert len(key) == 32 and not any(data.iterdir())
    assert crypto.load_or_create_shared_key(store(redis_server), data) == key
    store(redis_server).client.set(crypto.SHARED_KEY, "short")
    with pytest.raises(ValueError, match="damaged"):
        crypto.load_or_create_shared_key(store(redis_server), data)
    redis_server.stop()
    with pytest.raises(StoreUnavailable):
        crypto.load_or_create_shared_key(store(redis_server), data)
