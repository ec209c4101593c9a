"""Stable item ids, item fingerprints and natural ordering of names. Pure functions."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterable

from revenge.library.model import ItemType


def relative_key(parts: Iterable[str]) -> str:
    """A path relative to its library root as the id sees it: "/"-joined, Unicode NFC (the same name
    stored decomposed by macOS and composed by Linux gives the same id)."""
    return "/".join(unicodedata.normalize("NFC", p) for p in parts)


def item_id(item_type: ItemType, relative: str) -> str:
    """16 lowercase base32 characters (80 bits of SHA-256) of the item's type and its path relative
    to its library root: the id of an item first seen there (a moved item keeps the id it has:
    ``identity``), the same across restarts and across moving the whole library folder."""
    digest = hashlib.sha256(f"{item_type}\x00{relative}".encode()).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def variant_item_id(item_type: ItemType, relative: str, n: int) -> str:
    """The ``n``-th alternative id of a path whose own id is held by an item moved away from it."""
    return item_id(item_type, f"{relative}\x00{n}")


def unit_content(contents: Iterable[str | None]) -> str | None:
    """One item's content fingerprint from its files' (in play order): the file's own for one file;
    None when any is unknown, so an item is only matched on audio every file of it vouches for."""
    values = list(contents)
    if not values or any(v is None for v in values):
        return None
    if len(values) == 1:
        return values[0]
    return hashlib.blake2b("\x00".join(v for v in values if v).encode(), digest_size=12).hexdigest()


def fingerprint(files: Iterable[tuple[str, int, int]]) -> str:
    """Changes when any file's (path, size, mtime_ns) changes, or files are added, removed or reordered."""
    h = hashlib.sha256()
    for path, size, mtime_ns in files:
        h.update(f"{path}\x00{size}\x00{mtime_ns}\x01".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


_DIGITS_RE = re.compile(r"\d+")


def natural_text(text: str) -> str:
    """A string that sorts "naturally" as plain text: case-folded, every run of digits replaced by its
    length (2 digits) and the digits without leading zeros, so "2" < "10" and "Part 9" < "Part 10"."""

    def pad(match: re.Match[str]) -> str:
        digits = match.group().lstrip("0") or "0"
        return f"{min(len(digits), 99):02d}{digits}"

    return _DIGITS_RE.sub(pad, unicodedata.normalize("NFC", text).casefold())


def natural_key(name: str) -> tuple[str, str]:
    """Sort key for file names: natural order, the exact name breaking ties ("01" vs "1")."""
    return natural_text(name), name
