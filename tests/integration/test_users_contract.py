"""The user directory's contract (``keys.UserDirectory``), run against both backends: the embedded
SQLite ``UserStore`` and ``RedisUserStore`` on a real redis-server (tests/redisfix.py) with the key guard
on (a script touching a key it did not declare fails, as on Dragonfly). "Another instance" is a second
store object on the same file or server: what it sees of a change, and when; concurrent changes from
several keep the invariants (unique names, one first admin, never no admin)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from revenge.errors import StoreUnavailable
from revenge.redis_scripts import key_guard_lua
from revenge.security import keys, shared, users_redis
from revenge.security.app_passwords import app_password, new_app_password, new_decoy, token_secret
from revenge.security.crypto import SecretBox
from revenge.security.keys import (
    LastAdmin,
    UnknownUser,
    User,
    UserDirectory,
    UserError,
    UserExists,
    UserStore,
)
from revenge.security.shared import open_user_store
from revenge.security.users_redis import RedisUserStore
from tests.live import add_user, test_settings
from tests.redisfix import (
    RedisServer,
    redis_server,  # noqa: F401  (fixture used by the "redis" param)
)
from tests.waits import wait_until

KEY_GUARD = key_guard_lua(users_redis.KEY_GUARD_ARGS)
Opener = Callable[[], UserDirectory]


def cluster_redis(request: pytest.FixtureRequest, tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "cluster", cluster=True)
    server.start()
    request.addfinalizer(lambda: server.stop(hard=True))
    return server


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens another store object on the same backing store (another instance's view); closes them all.
    "redis-cluster" is a one-node cluster: it refuses a script whose keys span several slots."""
    opened: list[UserDirectory] = []
    if request.param.startswith("redis"):
        if request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
        else:
            server = cluster_redis(request, tmp_path)

        def make() -> UserDirectory:
            return RedisUserStore(server.url, 2.0, key_guard=KEY_GUARD)
    else:
        def make() -> UserDirectory:
            return UserStore(tmp_path / "users.db")

    def open_one() -> UserDirectory:
        store = make()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_first_user_is_admin_later_ones_listeners_unless_told(opener: Opener) -> None:
    users = opener()
    assert users.count() == 0
    boss, boss_key = users.add_user("boss")
    kid, _ = users.add_user("kid")
    other, _ = users.add_user("other", "admin")
    assert (boss.role, kid.role, other.role) == ("admin", "listener", "admin")
    assert boss_key.startswith(keys.KEY_PREFIX) and users.count() == 3
    assert len({boss.id, kid.id, other.id}) == 3 and all(u.id.isdigit() for u in (boss, kid, other))
    assert users.authenticate(boss_key) == boss


@pytest.mark.parametrize("name, role", [("", None), ("a b", None), ("x" * 65, None), ("ok", "root")])
def test_bad_names_and_roles_are_refused(opener: Opener, name: str, role: str | None) -> None:
    with pytest.raises(UserError):
        opener().add_user(name, role)  # type: ignore[arg-type]


def test_names_are_unique(opener: Opener) -> None:
    users = opener()
    users.add_user("ann")
    with pytest.raises(UserExists):
        opener().add_user("ann", "admin")
    assert [u.name for u, _ in users.list_users()] == ["ann"]


def test_keys_authenticate_their_user_and_only_them(opener: Opener) -> None:
    users = opener()
    ann, first = users.add_user("ann")
    bob, bob_key = users.add_user("bob")
    second = users.new_key("ann")
    assert users.authenticate(first) == ann and users.authenticate(second) == ann
    assert users.authenticate(bob_key) == bob
    assert users.authenticate("rv_nope") is None and users.authenticate(first + "x") is None
    with pytest.raises(UnknownUser):
        users.new_key("nobody")
    assert users.list_users() == [(ann, 2), (bob, 1)]  # sorted by name, with their number of keys
    assert opener().authenticate(second) == ann  # another instance knows the key at once


def test_app_passwords_are_sealed_per_user_read_back_and_go_with_the_user(opener: Opener) -> None:
    users = opener()
    users.add_user("boss")
    ann, _ = users.add_user("ann")
    bob, _ = users.add_user("bob")
    box = SecretBox(bytes(range(32)))
    assert app_password(users, box, "ann") == (ann, None) and app_password(users, box, "nobody") is None
    first = new_app_password(users, box, "ann")
    assert app_password(opener(), box, "ann") == (ann, first)  # another instance reads it back
    second = new_app_password(users, box, "ann")
    assert second != first and app_password(users, box, "ann") == (ann, second)
    sealed = users.app_secret("ann")[1]  # type: ignore[index]
    assert sealed is not None and second not in sealed
    users.set_app_secret(bob.id, "bob", sealed)  # ann's sealed value copied to bob's row does not open
    assert app_password(users, box, "bob") == (bob, None)
    assert app_password(users, SecretBox(bytes(32)), "ann") == (ann, None)  # another key
    with pytest.raises(UnknownUser):
        new_app_password(users, box, "nobody")
    with pytest.raises(UnknownUser):
        users.set_app_secret(bob.id, "ann", sealed)  # the name must have that id
    users.remove_user("ann")
    users.add_user("ann")
    assert app_password(users, box, "ann")[1] is None  # type: ignore[index]  # not the old user's


class CountingBox(SecretBox):
    """A real box that counts what it opens (how much work a token login does)."""

    opened = 0

    def open(self, sealed: str, context: str) -> str:
        self.opened += 1
        return super().open(sealed, context)


def test_a_token_secret_costs_one_decrypt_whether_or_not_the_name_exists(opener: Opener) -> None:
    users = opener()
    ann, _ = users.add_user("ann")
    users.add_user("bob")
    box = CountingBox(bytes(range(32)))
    password, decoy = new_app_password(users, box, "ann"), new_decoy(box)
    answers = []
    for name in ("ann", "bob", "nobody"):  # an app password, none, no such user
        before = box.opened
        answers.append(token_secret(users, box, name, decoy))
        assert box.opened == before + 1, name
    (user, got), (nobody_1, decoy_1), (nobody_2, decoy_2) = answers
    assert (user, got) == (ann, password) and nobody_1 is None and nobody_2 is None
    assert decoy_1 == decoy_2 != password and len(decoy_1) == len(password)


def test_by_id(opener: Opener) -> None:
    users = opener()
    ann, _ = users.add_user("ann")
    assert users.by_id(ann.id) == ann
    assert opener().by_id(ann.id) == ann
    for unknown in ("999", "abc", "", "1" * 20, "-1"):
        assert users.by_id(unknown) is None


def test_roles_change_but_the_last_admin_stays(opener: Opener) -> None:
    users = opener()
    boss, boss_key = users.add_user("boss")
    users.add_user("kid")
    with pytest.raises(LastAdmin):
        users.set_role("boss", "listener")
    with pytest.raises(LastAdmin):
        users.remove_user("boss")
    with pytest.raises(UnknownUser):
        users.set_role("nobody", "admin")
    with pytest.raises(UserError):
        users.set_role("kid", "root")  # type: ignore[arg-type]
    assert users.set_role("kid", "admin").role == "admin"
    assert users.set_role("kid", "admin").role == "admin"  # again: still two admins, not three
    assert users.set_role("boss", "listener") == User(boss.id, "boss", "listener")
    assert users.authenticate(boss_key) == User(boss.id, "boss", "listener")  # this instance: at once
    with pytest.raises(LastAdmin):
        users.set_role("kid", "listener")
    users.remove_user("boss")  # a listener now
    with pytest.raises(LastAdmin):
        users.remove_user("kid")


def test_removal_drops_the_keys_and_a_new_user_of_that_name_is_another(opener: Opener) -> None:
    users = opener()
    users.add_user("boss")
    ann, key = users.add_user("ann")
    extra = users.new_key("ann")
    users.remove_user("ann")
    assert users.authenticate(key) is None and users.authenticate(extra) is None
    assert users.by_id(ann.id) is None
    with pytest.raises(UnknownUser):
        users.remove_user("ann")
    again, new_key = users.add_user("ann")
    assert again.id != ann.id  # ids are never reused: data under the old id is not the new user's
    assert users.authenticate(key) is None and users.authenticate(new_key) == again
    assert [(u.name, n) for u, n in users.list_users()] == [("ann", 1), ("boss", 1)]


def test_another_instance_sees_a_removal_within_the_cache_time(opener: Opener,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    here = opener()
    here.add_user("boss")
    ann, key = here.add_user("ann")
    monkeypatch.setattr(type(here), "CACHE_SECONDS", 0.3)
    there = opener()
    assert there.authenticate(key) == ann and there.by_id(ann.id) == ann  # cached there now
    here.remove_user("ann")
    assert here.authenticate(key) is None  # the instance that removed it: at once
    wait_until(lambda: there.authenticate(key) is None and there.by_id(ann.id) is None,
               "the other instance to refuse the removed key", timeout=10)


def _together(count: int, work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_instances_creating_users_at_once_make_one_first_admin(opener: Opener) -> None:
    stores = [opener() for _ in range(6)]
    _together(6, lambda n: stores[n].add_user(f"user{n}") and None)
    listed = stores[0].list_users()
    assert len(listed) == 6 and sum(u.is_admin for u, _ in listed) == 1


def test_instances_creating_one_name_at_once_make_one_user(opener: Opener) -> None:
    stores = [opener() for _ in range(6)]
    made: list[str] = []

    def add(n: int) -> None:
        with contextlib.suppress(UserExists):
            made.append(stores[n].add_user("same")[1])

    _together(6, add)
    assert len(made) == 1 and stores[0].authenticate(made[0]) is not None
    assert [(u.name, k) for u, k in stores[0].list_users()] == [("same", 1)]


def test_two_admins_demoting_each_other_at_once_leave_one(opener: Opener) -> None:
    first = opener()
    first.add_user("a")
    first.add_user("b", "admin")
    stores = [opener(), opener()]
    refused: list[str] = []

    def demote(n: int) -> None:
        try:
            stores[n].set_role("b" if n else "a", "listener")
        except LastAdmin:
            refused.append("ab"[n])

    _together(2, demote)
    assert len(refused) == 1
    assert sum(u.is_admin for u, _ in first.list_users()) == 1


# --- Redis only ----------------------------------------------------------------------------------------

def test_users_dbs_are_merged_in_with_their_ids_and_keys(redis_server: RedisServer,  # noqa: F811
                                                         tmp_path: Path) -> None:
    local = UserStore(tmp_path / "users.db")
    boss, boss_key = local.add_user("boss")
    local.add_user("gone")
    kid, kid_key = local.add_user("kid")
    extra = local.new_key("kid")
    local.remove_user("gone")  # so the ids have a gap: 1 and 3
    dump = local.dump()
    local.close()
    shared = RedisUserStore(redis_server.url, 2.0, key_guard=KEY_GUARD)
    try:
        assert shared.merge_users(dump, "a/users.db") == []
        assert shared.list_users() == [(boss, 1), (kid, 2)]
        assert shared.authenticate(boss_key) == boss and shared.authenticate(extra) == kid
        assert shared.authenticate(kid_key) == kid and kid.id == "3"
        with pytest.raises(LastAdmin):
            shared.set_role("boss", "listener")  # the admin set came along
        # Another instance's users.db: the same boss (id and name) with its own key, a user whose id
        # and name are free, and two that clash with users the store has.
        other_key = keys.new_api_key()
        other = [(User("1", "boss", "admin"), 5, [keys.hash_key(other_key)]),
                 (User("2", "carl", "listener"), 5, []),
                 (User("4", "kid", "listener"), 5, []),  # the name is id 3's
                 (User("3", "zed", "listener"), 5, [])]  # the id is kid's
        assert shared.merge_users(other, "b/users.db") == ["kid", "zed"]
        assert shared.authenticate(other_key) == boss and shared.authenticate(boss_key) == boss
        assert [(u.name, u.id, n) for u, n in shared.list_users()] == [("boss", "1", 2), ("carl", "2", 0),
                                                                       ("kid", "3", 2)]
        assert int(shared.add_user("new")[0].id) > 4  # the counter starts past every merged id
        assert shared.merge_users(other, "b/users.db") == ["kid", "zed"]  # again: nothing changes
        assert [n for _, n in shared.list_users()] == [2, 0, 2, 1]
    finally:
        shared.close()


def test_the_data_dirs_users_db_is_merged_once_then_renamed(redis_server: RedisServer,  # noqa: F811
                                                           tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = add_user(data, "boss")
    settings = test_settings(data, store=redis_server.url)
    users = open_user_store(settings)
    try:
        boss = users.authenticate(key)
        assert boss is not None and boss.is_admin
        assert not (data / "users.db").exists() and (data / shared.MERGED).exists()
        users.add_user("other", "admin")
        users.remove_user("boss")
    finally:
        users.close()
    again = open_user_store(settings)  # the next start does not bring the removed user back
    try:
        assert [u.name for u, _ in again.list_users()] == ["other"] and again.authenticate(key) is None
    finally:
        again.close()
    embedded = open_user_store(test_settings(data))
    try:
        assert isinstance(embedded, UserStore) and (data / "users.db").exists()  # as before
    finally:
        embedded.close()


def test_store_down_is_store_unavailable_then_fast(redis_server: RedisServer) -> None:  # noqa: F811
    users = RedisUserStore(redis_server.url, 0.5)
    try:
        ann, key = users.add_user("ann")
        assert users.authenticate(key) == ann
        redis_server.stop()
        with pytest.raises(StoreUnavailable, match="users store"):
            users.authenticate(key + "x")
        with pytest.raises(StoreUnavailable, match="is down"):  # the next calls fail at once
            users.by_id(ann.id)
        assert users.authenticate(key) == ann  # a cached answer needs no store
    finally:
        users.close()
