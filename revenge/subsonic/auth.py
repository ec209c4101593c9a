"""Who is calling a ``/rest/`` endpoint, by the ways Subsonic clients log in:

* ``apiKey``: a Revenge API key (OpenSubsonic's apiKeyAuthentication), without ``u``;
* ``u`` + ``p``: the password in clear or ``enc:<hex>``; it must be one of the user's API keys;
* ``u`` + ``t`` + ``s``: ``t = md5(password + s)`` with the user's app password
  (``revenge user subsonic-password NAME``; security.app_passwords). A name that is no user, or a user
  without an app password, fails as a wrong token does (40, same message, same decrypt and compare
  against a decoy): a token login does not tell which names exist.

Failed logins count per user name and per address (``LoginLimiter``): past the limit the answer is the
same failure code, without checking, until the window has moved on. Nothing here logs a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from revenge.security.app_passwords import token_secret
from revenge.security.keys import User
from revenge.security.login_limits import LoginLimiter
from revenge.state import AppState
from revenge.subsonic.envelope import (
    CONFLICTING_AUTH,
    INVALID_API_KEY,
    WRONG_CREDENTIALS,
    SubsonicError,
    missing,
)

Param = Callable[[str], str | None]


def decode_password(p: str) -> str | None:
    """A ``p`` value in clear or ``enc:<hex of UTF-8>``; None for bad hex."""
    if not p.startswith("enc:"):
        return p
    try:
        return bytes.fromhex(p[4:]).decode("utf-8")
    except ValueError:
        return None


def token_matches(password: str, salt: str, token: str) -> bool:
    expected = hashlib.md5((password + salt).encode("utf-8")).hexdigest()  # the protocol says md5
    return hmac.compare_digest(expected, token.lower())


def authenticate(state: AppState, param: Param, address: str) -> User:
    limits = _Limits(state.subsonic.user_logins, state.subsonic.address_logins)
    api_key, name, password, token = param("apiKey"), param("u"), param("p"), param("t")
    if api_key is not None:
        if name is not None or password is not None or token is not None:
            raise SubsonicError(CONFLICTING_AUTH, "Multiple conflicting authentication mechanisms provided")
        limits.check(None, address, INVALID_API_KEY)
        user = state.users.authenticate(api_key)
        if user is None:
            limits.failed(None, address)
            raise SubsonicError(INVALID_API_KEY, "Invalid API key")
        return user
    if name is None:
        raise missing("u")
    if password is not None and token is not None:
        raise SubsonicError(CONFLICTING_AUTH, "Multiple conflicting authentication mechanisms provided")
    if password is None and token is None:
        raise missing("p")
    limits.check(name, address, WRONG_CREDENTIALS)
    user = _by_password(state, name, password) if password is not None else _by_token(state, name, token,
                                                                                       param("s"))
    if user is None:
        limits.failed(name, address)
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password")
    limits.users.succeeded(name)
    return user


@dataclass
class _Limits:
    users: LoginLimiter
    addresses: LoginLimiter

    def check(self, name: str | None, address: str, code: int) -> None:
        now = time.monotonic()
        waits = [w for w in (self.addresses.retry_after([address], now),
                             self.users.retry_after([name], now) if name is not None else None) if w]
        if waits:
            raise SubsonicError(code, f"Too many failed logins: try again in {int(max(waits)) + 1} s")

    def failed(self, name: str | None, address: str) -> None:
        now = time.monotonic()
        self.addresses.failed([address], now)
        if name is not None:
            self.users.failed([name], now)


def _by_password(state: AppState, name: str, password: str) -> User | None:
    key = decode_password(password)
    user = state.users.authenticate(key) if key else None
    return user if user is not None and user.name == name else None


def _by_token(state: AppState, name: str, token: str | None, salt: str | None) -> User | None:
    if salt is None:
        raise missing("s")
    user, password = token_secret(state.users, state.subsonic.box, name, state.subsonic.decoy)
    matches = token is not None and token_matches(password, salt, token)  # the decoy's compare too
    return user if matches else None
