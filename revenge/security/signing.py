"""Signed stream tokens (pure): players cannot send headers on segment requests, so media URLs carry
``?t=<token>``. A token binds (user id, item id, expiry) with HMAC-SHA256 under a server secret.

Format: ``<user_id>.<expires_at>.<mac>`` where ``mac`` is the URL-safe base64 (no padding) of
HMAC-SHA256(secret, "rv1|user|item|expires"). The item id is not in the token: it comes from the URL
path, so a token for one item never opens another. Several secrets are accepted (rotation: the newest
signs, older ones still verify until they are dropped).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN_RE = re.compile(r"([0-9]{1,20})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
MAX_TOKEN_LENGTH = 96


class TokenError(ValueError):
    """Why a token was refused: ``malformed``, ``expired`` or ``bad_signature``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StreamGrant:
    user_id: str
    item_id: str
    expires_at: int


def _mac(secret: bytes, user_id: str, item_id: str, expires_at: int) -> bytes:
    message = f"rv1|{user_id}|{item_id}|{expires_at}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_stream_token(secret: bytes, user_id: str, item_id: str, expires_at: int) -> str:
    if not user_id.isdigit():
        raise ValueError("user ids are decimal strings")
    if expires_at < 0:
        raise ValueError("expires_at must be a unix time")
    return f"{user_id}.{expires_at}.{_b64(_mac(secret, user_id, item_id, expires_at))}"


def verify_stream_token(secrets: Sequence[bytes], token: str, item_id: str, now: int) -> StreamGrant:
    """The grant the token carries for ``item_id`` at time ``now``, or :class:`TokenError`."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", "stream token is malformed")
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise TokenError("malformed", "stream token is malformed")
    user_id, expires_text, mac_text = match.groups()
    expires_at = int(expires_text)
    # Compare the text form: base64's last character carries two spare bits, so comparing decoded
    # bytes would accept a token with one character changed. Every secret is checked (no early exit).
    given = mac_text.encode("ascii")
    valid = False
    for secret in secrets:
        valid |= hmac.compare_digest(given, _b64(_mac(secret, user_id, item_id, expires_at)).encode())
    if not valid:
        raise TokenError("bad_signature", "stream token is not valid for this item")
    if expires_at <= now:
        raise TokenError("expired", "stream token has expired; start a new playback session")
    return StreamGrant(user_id, item_id, expires_at)
