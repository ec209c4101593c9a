"""Users, their roles and API keys. Keys are shown once and stored only as their SHA-256 (they are 256-bit
random, so a fast hash is enough: there is nothing to brute-force).

Roles: an ``admin`` manages the server (users, scans, the library's failures with their paths); a
``listener`` plays, and sees items, never server paths. The first user of a server is its admin.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

USER_NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
KEY_PREFIX = "rv_"
Role = Literal["admin", "listener"]
ROLES: tuple[Role, ...] = ("admin", "listener")


@dataclass(frozen=True, slots=True)
class User:
    id: str  # decimal string; used as the hash tag in store keys (rv:{<id>}:…)
    name: str
    role: Role = "listener"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def role_of(value: object) -> Role:
    return "admin" if value == "admin" else "listener"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class UserError(ValueError):
    """A user operation refused: a bad name or role."""


class UnknownUser(UserError):
    pass


class UserExists(UserError):
    pass


class LastAdmin(UserError):
    """The operation would leave the server without an admin."""


class UserDirectory(Protocol):
    """Users and their hashed keys: the embedded :class:`UserStore` (``users.db``) or, with a shared
    store, ``users_redis.RedisUserStore``. Both keep the same rules (tests/integration/
    test_users_contract.py): unique names, the first user is the admin unless a role is given, the last
    admin can be neither demoted nor removed, and ``authenticate``/``by_id`` answer from a cache of
    ``CACHE_SECONDS``, so a change made elsewhere (another process, another instance) is seen within it.
    Store failures raise ``revenge.errors.StoreUnavailable``; refusals raise :class:`UserError`."""

    def close(self) -> None: ...
    def count(self) -> int: ...
    def add_user(self, name: str, role: Role | None = None) -> tuple[User, str]: ...
    def set_role(self, name: str, role: Role) -> User: ...
    def new_key(self, name: str) -> str: ...
    def list_users(self) -> list[tuple[User, int]]: ...
    def remove_user(self, name: str) -> None: ...
    def authenticate(self, key: str) -> User | None: ...
    def by_id(self, user_id: str) -> User | None: ...
    def app_secret(self, name: str) -> tuple[User, str | None] | None: ...
    def set_app_secret(self, user_id: str, name: str, sealed: str) -> None: ...


CACHE_SECONDS = 5.0


class LookupCache:
    """Answers of ``authenticate`` (by key digest) and ``by_id`` (by ``id:<id>``) for ``seconds``: the hot
    path (every API request) is a dict hit, and a change elsewhere is seen once the entry is older."""

    MAX_ENTRIES = 10_000

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, User | None]] = {}

    def get(self, key: str) -> tuple[bool, User | None]:
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.seconds:
            return True, hit[1]
        return False, None

    def put(self, key: str, user: User | None) -> None:
        if len(self._entries) > self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), user)

    def clear(self) -> None:
        self._entries.clear()


def check_new_user(name: str, role: Role | None) -> None:
    if not USER_NAME_RE.fullmatch(name):
        raise UserError("user names are 1-64 characters of letters, digits, _ . @ -")
    if role is not None and role not in ROLES:
        raise UserError(f"roles are {', '.join(ROLES)}")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"roles are {', '.join(ROLES)}")


def valid_user_id(user_id: str) -> bool:
    return user_id.isdigit() and len(user_id) <= 19


class UserStore:
    """SQLite table of users and hashed keys (``users.db`` in the data dir).

    Lookups are cached for a few seconds so the hot path (every API request) is a dict hit, while a
    key removed with ``revenge user remove`` from another process stops working within that time.
    """

    CACHE_SECONDS = CACHE_SECONDS

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS users (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              name TEXT NOT NULL UNIQUE,
              created_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS api_keys (
              key_hash TEXT PRIMARY KEY,
              user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              created_at INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS app_secrets (
              user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
              sealed TEXT NOT NULL
            );
            """
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(users)")}
        if "role" not in columns:
            # A users.db from before roles: its first user is the admin (the one `revenge serve`
            # created), everyone else a listener.
            with self._db:
                self._db.execute("ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'listener'")
                self._db.execute("UPDATE users SET role = 'admin' WHERE id = (SELECT min(id) FROM users)")
        self._cache = LookupCache(self.CACHE_SECONDS)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM users").fetchone()[0])

    def add_user(self, name: str, role: Role | None = None) -> tuple[User, str]:
        """Create a user and its first API key; the key is returned once and never stored. The role
        defaults to ``admin`` for the first user of the server and ``listener`` for every later one."""
        check_new_user(name, role)
        key = new_api_key()
        now = int(time.time())
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")  # the first-user check and the insert as one
            chosen: Role = role or ("listener" if self._db.execute("SELECT 1 FROM users LIMIT 1").fetchone()
                                    else "admin")
            try:
                cur = self._db.execute("INSERT INTO users(name, created_at, role) VALUES (?, ?, ?)",
                                       (name, now, chosen))
            except sqlite3.IntegrityError:
                raise UserExists(f"user {name!r} already exists") from None
            user_id = int(cur.lastrowid or 0)
            self._db.execute(
                "INSERT INTO api_keys(key_hash, user_id, created_at) VALUES (?, ?, ?)",
                (hash_key(key), user_id, now),
            )
        return User(str(user_id), name, chosen), key

    def set_role(self, name: str, role: Role) -> User:
        """Change a user's role; the last admin cannot stop being one (nobody could manage the server)."""
        check_role(role)
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT id, role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownUser(f"no user {name!r}")
            if row[1] == "admin" and role != "admin" and self._admins() == 1:
                raise LastAdmin(f"{name!r} is the only admin; make another user admin first")
            self._db.execute("UPDATE users SET role = ? WHERE id = ?", (role, row[0]))
        self._cache.clear()
        return User(str(row[0]), name, role)

    def _admins(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0])

    def new_key(self, name: str) -> str:
        """Issue another key for an existing user (e.g. one per device)."""
        key = new_api_key()
        with self._lock:
            row = self._db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownUser(f"no user {name!r}")
            self._db.execute(
                "INSERT INTO api_keys(key_hash, user_id, created_at) VALUES (?, ?, ?)",
                (hash_key(key), row[0], int(time.time())),
            )
        return key

    def list_users(self) -> list[tuple[User, int]]:
        """Users with their number of keys."""
        with self._lock:
            rows = self._db.execute(
                "SELECT u.id, u.name, u.role, count(k.key_hash) FROM users u "
                "LEFT JOIN api_keys k ON k.user_id = u.id GROUP BY u.id ORDER BY u.name"
            ).fetchall()
        return [(User(str(r[0]), r[1], role_of(r[2])), int(r[3])) for r in rows]

    def remove_user(self, name: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT id, role FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownUser(f"no user {name!r}")
            if row[1] == "admin" and self._admins() == 1:
                raise LastAdmin(f"{name!r} is the only admin; make another user admin first")
            self._db.execute("DELETE FROM api_keys WHERE user_id = ?", (row[0],))
            self._db.execute("DELETE FROM app_secrets WHERE user_id = ?", (row[0],))
            self._db.execute("DELETE FROM users WHERE id = ?", (row[0],))
        self._cache.clear()

    def authenticate(self, key: str) -> User | None:
        digest = hash_key(key)
        cached, user = self._cache.get(digest)
        if cached:
            return user
        with self._lock:
            row = self._db.execute(
                "SELECT u.id, u.name, u.role FROM api_keys k JOIN users u ON u.id = k.user_id "
                "WHERE k.key_hash = ?",
                (digest,),
            ).fetchone()
        user = User(str(row[0]), row[1], role_of(row[2])) if row else None
        self._cache.put(digest, user)
        return user

    def by_id(self, user_id: str) -> User | None:
        """The user with this id (signed stream tokens name users by id), cached like ``authenticate``."""
        if not valid_user_id(user_id):
            return None
        cache_key = "id:" + user_id  # cannot collide with a key digest (64 hex digits)
        cached, user = self._cache.get(cache_key)
        if cached:
            return user
        with self._lock:
            row = self._db.execute("SELECT id, name, role FROM users WHERE id = ?",
                                   (int(user_id),)).fetchone()
        user = User(str(row[0]), row[1], role_of(row[2])) if row else None
        self._cache.put(cache_key, user)
        return user

    def app_secret(self, name: str) -> tuple[User, str | None] | None:
        """The user ``name`` and its sealed app password (``security.app_passwords``; None: none set),
        or None for no such user. Not cached: only token logins read it."""
        with self._lock:
            row = self._db.execute("SELECT u.id, u.name, u.role, s.sealed FROM users u "
                                   "LEFT JOIN app_secrets s ON s.user_id = u.id WHERE u.name = ?",
                                   (name,)).fetchone()
        return (User(str(row[0]), row[1], role_of(row[2])), row[3]) if row else None

    def set_app_secret(self, user_id: str, name: str, sealed: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None or str(row[0]) != user_id:
                raise UnknownUser(f"no user {name!r}")
            self._db.execute("INSERT OR REPLACE INTO app_secrets(user_id, sealed) VALUES (?, ?)",
                             (row[0], sealed))

    def dump(self) -> list[tuple[User, int, list[str]]]:
        """Every user with its creation time and key digests: what moving ``users.db`` into a shared
        store copies (``users_redis.RedisUserStore.import_users``)."""
        with self._lock:
            users = self._db.execute("SELECT id, name, role, created_at FROM users ORDER BY id").fetchall()
            keys = self._db.execute("SELECT user_id, key_hash FROM api_keys").fetchall()
        digests: dict[int, list[str]] = {}
        for user_id, digest in keys:
            digests.setdefault(int(user_id), []).append(digest)
        return [(User(str(r[0]), r[1], role_of(r[2])), int(r[3]), sorted(digests.get(int(r[0]), [])))
                for r in users]
