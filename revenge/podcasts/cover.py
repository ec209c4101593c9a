"""A show's cover in its folder: the feed's image fetched through the guarded ``Fetcher`` (at most
``MAX_COVER_BYTES``), checked with Pillow, and written atomically as ``cover.jpg`` / ``cover.png`` /
``cover.webp`` so the library's folder-image rule (``library.art``) gives the show's episodes their art.

Rules (pure): ``cover_name`` (the file name for a checked picture), ``wanted`` (fetch again or not)."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import anyio

from revenge.podcasts.fetch import Fetcher, FetchError

MAX_COVER_BYTES = 10 * 1024 * 1024  # podcast art guidelines ask for ≤ 3000 px JPEG/PNG: a few MB at most
MAX_COVER_PIXELS = 8000 * 8000  # a small file can still decode huge (a PNG of one colour): refused first
COVER_NAMES = {"JPEG": "cover.jpg", "PNG": "cover.png", "WEBP": "cover.webp"}  # formats art.py serves


class CoverError(Exception):
    """The image could not be fetched or is no picture."""


def wanted(image_url: str | None, fetched_url: str | None, folder_has_cover: bool) -> bool:
    """Fetch the show's image when it has one and it is new (first download, changed URL) or its file
    is gone."""
    return bool(image_url) and (image_url != fetched_url or not folder_has_cover)


def cover_name(data: bytes) -> tuple[str, bytes]:
    """The file name and bytes to write for ``data``: JPEG, PNG and WebP as they are, other pictures
    Pillow reads (GIF, BMP, …) converted to JPEG; ``CoverError`` for anything that is no picture."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # the whole structure (checksums of PNG chunks, …), not just the magic
            kind = probe.format or ""
            if probe.width * probe.height > MAX_COVER_PIXELS:
                raise CoverError(f"{probe.width} × {probe.height} pixels is too large for a cover")
        if kind in COVER_NAMES:
            return COVER_NAMES[kind], data
        with Image.open(io.BytesIO(data)) as image:
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=90)
            return COVER_NAMES["JPEG"], out.getvalue()
    except CoverError:
        raise
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, …
        raise CoverError(f"not a picture: {type(exc).__name__}: {exc}") from None


def has_cover(folder: Path) -> bool:
    return any((folder / name).is_file() for name in COVER_NAMES.values())


def write_cover(folder: Path, name: str, data: bytes) -> None:
    """``data`` as ``folder/name`` by temp file + rename (never a half-written cover), and the other
    ``cover.*`` this writes removed, so a changed format does not leave the old picture preferred."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".cover-", suffix=".part", dir=folder)  # hidden: the scanner skips it
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, folder / name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    for other in COVER_NAMES.values():
        if other != name:
            (folder / other).unlink(missing_ok=True)


async def fetch_cover(fetcher: Fetcher, url: str, folder: Path) -> str:
    """Fetch ``url`` and write it as the folder's cover; the file name written, or ``CoverError``."""
    try:
        response = await fetcher.get_bytes(url, MAX_COVER_BYTES)
    except FetchError as exc:
        raise CoverError(str(exc)) from None
    name, data = await anyio.to_thread.run_sync(cover_name, response.body)
    try:
        await anyio.to_thread.run_sync(write_cover, folder, name, data)
    except OSError as exc:
        raise CoverError(f"cannot write {name}: {exc}") from None
    return name
