"""Users and hashed API keys in the shared Dragonfly/Redis store (``REVENGE_STORE=redis://…``), so every
instance sees the same ones; the rules are those of ``keys.UserDirectory``.

Keys: the whole user directory is under ONE hash tag, ``{users}``, so that each operation is one Lua
script, atomic over all the keys it touches (and in one cluster slot, with every key in KEYS):

* ``rv:{users}:next-id``  counter: user ids (INCR; an id is never reused, as with SQLite's AUTOINCREMENT)
* ``rv:{users}:names``  hash: name → id (unique names)
* ``rv:{users}:users``  hash: id → ``<role> <created_at> <name>`` (names have no spaces)
* ``rv:{users}:admins``  set: the admins' ids (the last-admin rule counts it)
* ``rv:{users}:keys``  hash: SHA-256 of an API key → user id (the lookup by key cannot know the user)
* ``rv:{users}:keys-of:<id>``  set: the digests of one user's keys (removal drops them)
* ``rv:{users}:app-secrets``  hash: id → the user's sealed app password (``security.app_passwords``)

Why not a hash tag per user: a lookup by key, unique names and "not the last admin" are invariants over
all users. With one tag they are plain atomic scripts; the directory is small and read only on cache
misses, so one slot is no hot spot. (The user's own data, progress and records, stays under ``{<id>}``.)

A ``users.db`` in an instance's data dir (from before the users were shared) is merged in once, ids
kept (progress and records in the store are keyed by them): ``merge_users``, then ``security.shared``
renames the file, so a user removed later is not brought back by the next start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from revenge.redis_scripts import reply_text
from revenge.security.keys import (
    CACHE_SECONDS,
    LastAdmin,
    LookupCache,
    Role,
    UnknownUser,
    User,
    UserExists,
    check_new_user,
    check_role,
    hash_key,
    new_api_key,
    role_of,
    valid_user_id,
)
from revenge.security.redis_sync import SyncRedis

log = logging.getLogger("revenge.security")

PREFIX = "rv:{users}:"
NEXT_ID = PREFIX + "next-id"
NAMES = PREFIX + "names"
USERS = PREFIX + "users"
ADMINS = PREFIX + "admins"
KEYS = PREFIX + "keys"
APP_SECRETS = PREFIX + "app-secrets"


def keys_of(user_id: str) -> str:
    return f"{PREFIX}keys-of:{user_id}"


# KEYS: names, users, admins, keys, keys-of:<id>. ARGV: name, id, role ('' = first user is admin), key
# digest, created_at. The name check, the first-user rule and the writes are one atomic step.
_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'exists' end
local role = ARGV[3]
if role == '' then
  if redis.call('HLEN', KEYS[2]) == 0 then role = 'admin' else role = 'listener' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], role .. ' ' .. ARGV[5] .. ' ' .. ARGV[1])
if role == 'admin' then redis.call('SADD', KEYS[3], ARGV[2]) end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[4])
return role
"""

# KEYS: names, users, admins. ARGV: name, role.
_SET_ROLE = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return {'unknown'} end
local record = redis.call('HGET', KEYS[2], id)
local old, rest = string.match(record, '^(%S+) (.*)$')
if ARGV[2] == 'admin' then
  redis.call('SADD', KEYS[3], id)
elseif old == 'admin' then
  if redis.call('SCARD', KEYS[3]) <= 1 then return {'last_admin'} end
  redis.call('SREM', KEYS[3], id)
end
redis.call('HSET', KEYS[2], id, ARGV[2] .. ' ' .. rest)
return {'ok', id}
"""

# KEYS: names, keys, keys-of:<id>. ARGV: name, id, key digest. The id was read before the call: the
# script checks the name still has it (the user may have been removed, or removed and created again).
_NEW_KEY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""

# KEYS: names, users, admins, keys, keys-of:<id>, app-secrets. ARGV: name, id.
_REMOVE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'unknown' end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 and redis.call('SCARD', KEYS[3]) <= 1 then
  return 'last_admin'
end
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[5])) do redis.call('HDEL', KEYS[4], digest) end
redis.call('DEL', KEYS[5])
redis.call('HDEL', KEYS[6], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
return 'ok'
"""

# KEYS: keys, users. ARGV: key digest. One round trip for a cache miss.
_AUTHENTICATE = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
local record = redis.call('HGET', KEYS[2], id)
if not record then return false end
return {id, record}
"""

# KEYS: names, users, app-secrets. ARGV: name. The user and its sealed app password in one trip.
_APP_SECRET = """
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return false end
local record = redis.call('HGET', KEYS[2], id)
if not record then return false end
return {id, record, redis.call('HGET', KEYS[3], id)}
"""

# KEYS: names, app-secrets. ARGV: name, id, sealed. The name must still have that id.
_SET_APP_SECRET = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS: names, users, admins, keys, keys-of:<id>. ARGV: id, name, role, created_at, key digests…
# A user the store has with the same id and name gets the keys; an id or a name taken by another user
# is a conflict, left out.
_MERGE = """
local record = redis.call('HGET', KEYS[2], ARGV[1])
if record then
  if string.match(record, '^%S+ %S+ (.*)$') ~= ARGV[2] then return 'conflict' end
else
  if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then return 'conflict' end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[2])
  if ARGV[3] == 'admin' then redis.call('SADD', KEYS[3], ARGV[1]) end
end
for i = 5, #ARGV do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[i])
end
return 'ok'
"""

# KEYS: next-id. ARGV: the highest id merged in. The counter never goes back.
_RAISE_COUNTER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

SCRIPTS = {"add": _ADD, "set_role": _SET_ROLE, "new_key": _NEW_KEY, "remove": _REMOVE,
           "authenticate": _AUTHENTICATE, "app_secret": _APP_SECRET, "set_app_secret": _SET_APP_SECRET,
           "merge": _MERGE, "raise_counter": _RAISE_COUNTER}
KEY_GUARD_ARGS = {"HEXISTS": 1, "HLEN": 1, "HSET": 1, "HGET": 1, "HDEL": 1, "SADD": 1, "SREM": 1,
                  "SCARD": 1, "SISMEMBER": 1, "SMEMBERS": 1, "DEL": -1, "GET": 1, "SET": 1}


def _user(user_id: str, record: str) -> User:
    role, _, rest = record.partition(" ")
    _, _, name = rest.partition(" ")
    return User(user_id, name, role_of(role))


class RedisUserStore:
    """``keys.UserDirectory`` on Dragonfly or any Redis-protocol server; see the module docstring."""

    CACHE_SECONDS = CACHE_SECONDS

    def __init__(self, url: str, timeout_seconds: float, *, key_guard: str = "") -> None:
        """``key_guard``: Lua put before every script (tests: ``redis_scripts.key_guard_lua``)."""
        self._redis = SyncRedis(url, timeout_seconds, "users")
        self._scripts = {name: self._redis.client.register_script(key_guard + source)
                         for name, source in SCRIPTS.items()}
        self._cache = LookupCache(self.CACHE_SECONDS)

    def close(self) -> None:
        self._redis.close()

    def _script(self, name: str, keys: Sequence[str], args: Sequence[str]) -> object:
        script = self._scripts[name]
        return self._redis.run(lambda client: script(keys=list(keys), args=list(args), client=client))

    def _id_of(self, name: str) -> str:
        user_id = self._redis.run(lambda client: client.hget(NAMES, name))
        if user_id is None:
            raise UnknownUser(f"no user {name!r}")
        return reply_text(user_id)

    def count(self) -> int:
        return int(self._redis.run(lambda client: client.hlen(USERS)))

    def add_user(self, name: str, role: Role | None = None) -> tuple[User, str]:
        check_new_user(name, role)
        key = new_api_key()
        user_id = str(self._redis.run(lambda client: client.incr(NEXT_ID)))
        chosen = reply_text(self._script("add", (NAMES, USERS, ADMINS, KEYS, keys_of(user_id)),
                                   (name, user_id, role or "", hash_key(key), str(int(time.time())))))
        if chosen == "exists":
            raise UserExists(f"user {name!r} already exists")
        return User(user_id, name, role_of(chosen)), key

    def set_role(self, name: str, role: Role) -> User:
        check_role(role)
        reply = self._script("set_role", (NAMES, USERS, ADMINS), (name, role))
        outcome = reply_text(reply[0])  # type: ignore[index]
        if outcome == "unknown":
            raise UnknownUser(f"no user {name!r}")
        if outcome == "last_admin":
            raise LastAdmin(f"{name!r} is the only admin; make another user admin first")
        self._cache.clear()
        return User(reply_text(reply[1]), name, role)  # type: ignore[index]

    def new_key(self, name: str) -> str:
        key = new_api_key()
        user_id = self._id_of(name)
        if not self._script("new_key", (NAMES, KEYS, keys_of(user_id)), (name, user_id, hash_key(key))):
            raise UnknownUser(f"no user {name!r}")
        return key

    def list_users(self) -> list[tuple[User, int]]:
        records = self._redis.run(lambda client: client.hgetall(USERS))
        users = sorted((_user(reply_text(i), reply_text(r)) for i, r in records.items()),
                       key=lambda u: u.name)
        counts: list[int] = []
        for start in range(0, len(users), 500):  # bounded pipelines
            batch = users[start:start + 500]

            def count_keys(client: object, batch: list[User] = batch) -> list[int]:
                pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
                for user in batch:
                    pipe.scard(keys_of(user.id))
                return [int(n) for n in pipe.execute()]

            counts.extend(self._redis.run(count_keys))
        return list(zip(users, counts, strict=True))

    def remove_user(self, name: str) -> None:
        user_id = self._id_of(name)
        outcome = reply_text(self._script("remove", (NAMES, USERS, ADMINS, KEYS, keys_of(user_id),
                                                     APP_SECRETS), (name, user_id)))
        if outcome == "unknown":
            raise UnknownUser(f"no user {name!r}")
        if outcome == "last_admin":
            raise LastAdmin(f"{name!r} is the only admin; make another user admin first")
        self._cache.clear()

    def authenticate(self, key: str) -> User | None:
        digest = hash_key(key)
        cached, user = self._cache.get(digest)
        if cached:
            return user
        reply = self._script("authenticate", (KEYS, USERS), (digest,))
        user = _user(reply_text(reply[0]), reply_text(reply[1])) if reply else None  # type: ignore[index]
        self._cache.put(digest, user)
        return user

    def by_id(self, user_id: str) -> User | None:
        if not valid_user_id(user_id):
            return None
        cache_key = "id:" + user_id
        cached, user = self._cache.get(cache_key)
        if cached:
            return user
        record = self._redis.run(lambda client: client.hget(USERS, user_id))
        user = _user(user_id, reply_text(record)) if record is not None else None
        self._cache.put(cache_key, user)
        return user

    def app_secret(self, name: str) -> tuple[User, str | None] | None:
        reply = self._script("app_secret", (NAMES, USERS, APP_SECRETS), (name,))
        if not reply:
            return None
        user_id, record, sealed = reply  # type: ignore[misc]
        return _user(reply_text(user_id), reply_text(record)), (reply_text(sealed) if sealed else None)

    def set_app_secret(self, user_id: str, name: str, sealed: str) -> None:
        if not self._script("set_app_secret", (NAMES, APP_SECRETS), (name, user_id, sealed)):
            raise UnknownUser(f"no user {name!r}")

    def merge_users(self, users: Sequence[tuple[User, int, Sequence[str]]], source: str) -> list[str]:
        """Add users (with their ids, creation times and key digests: ``UserStore.dump``) to the shared
        directory: a user it has with the same id and name gets the keys; one whose id or name another
        user has is left out. The names left out."""
        conflicts: list[str] = []
        for user, created_at, digests in users:
            outcome = self._script("merge", (NAMES, USERS, ADMINS, KEYS, keys_of(user.id)),
                                   (user.id, user.name, user.role, str(created_at), *digests))
            if reply_text(outcome) == "conflict":  # type: ignore[arg-type]
                conflicts.append(user.name)
        if users:
            highest = max(int(user.id) for user, _, _ in users)
            self._script("raise_counter", (NEXT_ID,), (str(highest),))
            self._cache.clear()
        if conflicts:
            log.warning("users of %s left out (their id or name is another user's in the shared store): %s",
                        source, ", ".join(conflicts))
        log.info("merged %d user(s) and their keys from %s into the shared store",
                 len(users) - len(conflicts), source)
        return conflicts
