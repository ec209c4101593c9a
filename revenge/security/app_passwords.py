"""App passwords: one per user, for clients that log in with a password the server must read back.

Subsonic's token login sends ``md5(password + salt)``: the server can only check it by knowing the
password, so a hash will not do. The password is random (the user cannot pick a weak one), shown once
by ``revenge user subsonic-password NAME``, and kept sealed (``crypto.SecretBox``: AES-GCM, the key in
the data dir or the shared store), its context naming the user so a row copied to another user does
not open. It is never logged.
"""

from __future__ import annotations

import secrets

from revenge.security.crypto import SealError, SecretBox
from revenge.security.keys import UnknownUser, User, UserDirectory

PASSWORD_BYTES = 18  # 24 URL-safe characters: 144 bits, short enough to type into a phone
_DECOY_CONTEXT = "app-password:-"  # no user id is "-"


def _context(user_id: str) -> str:
    return f"app-password:{user_id}"


def new_app_password(users: UserDirectory, box: SecretBox, name: str) -> str:
    """Give ``name`` a new app password (the old one stops working) and return it."""
    found = users.app_secret(name)
    if found is None:
        raise UnknownUser(f"no user {name!r}")
    user = found[0]
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    users.set_app_secret(user.id, name, box.seal(password, _context(user.id)))
    return password


def app_password(users: UserDirectory, box: SecretBox, name: str) -> tuple[User, str | None] | None:
    """The user ``name`` and its app password (None when it has none, or it does not open: sealed with
    another key); None for no such user."""
    found = users.app_secret(name)
    if found is None:
        return None
    user, sealed = found
    if sealed is None:
        return user, None
    try:
        return user, box.open(sealed, _context(user.id))
    except SealError:
        return user, None


def new_decoy(box: SecretBox) -> str:
    """A sealed random password, opened in place of a real one when there is none (``token_secret``)."""
    return box.seal(secrets.token_urlsafe(PASSWORD_BYTES), _DECOY_CONTEXT)


def token_secret(users: UserDirectory, box: SecretBox, name: str, decoy: str) -> tuple[User | None, str]:
    """The user ``name`` and the password to check its token against. For no such user, or one without
    an app password that opens, None and the ``decoy`` opened instead: the same lookup, decrypt and (the
    caller's) compare either way, so neither the answer nor its time tells which names exist."""
    found = app_password(users, box, name)
    if found is not None and found[1] is not None:
        return found
    return None, box.open(decoy, _DECOY_CONTEXT)
