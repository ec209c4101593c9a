"""Fetching feeds and enclosures through the guarded client: redirects followed by hand (each hop's URL
checked, at most ``max_redirects``), bodies capped while they arrive, conditional GET for feeds, Range
to resume an enclosure, and every way a transfer can go wrong turned into ``FetchError``."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import anyio
import httpx

from revenge.podcasts.netguard import UnsafeUrl, check_url, guarded_client


class FetchError(Exception):
    """A fetch that failed; ``resumable`` when a partial file was kept for a Range request next time."""

    def __init__(self, message: str, resumable: bool = False, unsafe: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable
        self.unsafe = unsafe  # refused by the outbound guard (scheme, address), not a failure of the host


@dataclass(frozen=True, slots=True)
class FeedResponse:
    not_modified: bool
    body: bytes
    etag: str | None
    last_modified: str | None
    url: str  # after redirects


_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


async def discard_part(part: Path) -> None:
    """Remove a part file and the validator it would be resumed under."""
    await anyio.Path(part).unlink(missing_ok=True)
    await anyio.Path(validator_path(part)).unlink(missing_ok=True)


class Fetcher:
    def __init__(self, *, allow_private: bool, timeout: float, max_redirects: int, user_agent: str) -> None:
        self._client = guarded_client(allow_private, timeout, user_agent)
        self._max_redirects = max_redirects

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def _get(self, url: str, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """The response to GET ``url`` after at most ``max_redirects`` redirects, body not read yet."""
        try:
            for _ in range(self._max_redirects + 1):
                check_url(url)
                request = self._client.build_request("GET", url, headers=headers)
                response = await self._client.send(request, stream=True)
                if response.is_redirect and "location" in response.headers:
                    await response.aclose()
                    url = urljoin(url, response.headers["location"])
                    continue
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            raise FetchError(f"more than {self._max_redirects} redirects")
        except UnsafeUrl as exc:
            raise FetchError(str(exc), unsafe=True) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None

    async def get_bytes(
        self, url: str, max_bytes: int, headers: dict[str, str] | None = None
    ) -> FeedResponse:
        """GET ``url`` (a feed: with ``If-None-Match`` / ``If-Modified-Since`` in ``headers``) into memory,
        at most ``max_bytes`` after decompression; a 304 has an empty body."""
        async with self._get(url, headers or {}) as response:
            if response.status_code == 304:
                return FeedResponse(
                    True,
                    b"",
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                    str(response.url),
                )
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            try:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"more than {max_bytes} bytes")
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            return FeedResponse(
                False,
                b"".join(chunks),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                str(response.url),
            )

    async def download(
        self, url: str, part: Path, max_bytes: int, progress: Callable[[int, int | None], None]
    ) -> None:
        """``url`` into ``part``, continuing what ``part`` already holds when the host answers the Range
        with a matching 206 (else from the start). A part is only continued under ``If-Range`` with the
        validator (strong ETag, else Last-Modified) of the answer it came from, kept next to it: a file
        that changed on the host since, or one under a new URL, is fetched whole, never spliced. Complete
        means exactly the announced length arrived (Content-Length, or the total of Content-Range); anything
        short is ``FetchError(resumable=True)`` with ``part`` kept, anything too long or refused is
        ``FetchError`` with ``part`` removed."""
        apart, avalidator = anyio.Path(part), anyio.Path(validator_path(part))
        validator = (await avalidator.read_text()).strip() if await avalidator.exists() else ""
        have = (await apart.stat()).st_size if validator and await apart.exists() else 0
        headers = {"Accept-Encoding": "identity"}  # byte offsets must be the file's
        if have:
            headers["Range"] = f"bytes={have}-"
            headers["If-Range"] = validator
        async with self._get(url, headers) as response:
            if response.status_code == 416 and have:
                await discard_part(part)  # what we kept is no prefix of the file any more
                raise FetchError("the host refused to resume (416)", resumable=True)
            if response.status_code == 206 and have:
                match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("content-range", ""))
                if match is None or int(match.group(1)) != have:
                    await discard_part(part)
                    raise FetchError("the host answered a different range", resumable=True)
                total = None if match.group(3) == "*" else int(match.group(3))
                mode = "ab"
            elif response.status_code == 200:
                have, mode = 0, "wb"
                etag = response.headers.get("etag", "")
                strong = etag if etag and not etag.startswith("W/") else ""
                fresh = strong or response.headers.get("last-modified", "")
                if fresh:
                    await avalidator.write_text(fresh)
                else:
                    await avalidator.unlink(missing_ok=True)
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
            else:
                await discard_part(part)
                raise FetchError(f"HTTP {response.status_code}")
            if total is not None and total > max_bytes:
                await discard_part(part)
                raise FetchError(f"the file is {total} bytes, more than the {max_bytes} allowed")
            done = have
            progress(done, total)
            try:
                async with await anyio.open_file(part, mode) as out:
                    async for chunk in response.aiter_raw():  # as it arrives: a cut keeps all it got
                        done += len(chunk)
                        if done > max_bytes or (total is not None and done > total):
                            raise FetchError("the host sent more than it announced")
                        await out.write(chunk)
                        progress(done, total)
                    await out.flush()
                    await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            except httpx.HTTPError as exc:
                raise FetchError(f"transfer broke off at {done} bytes: {exc}", resumable=True) from None
            except FetchError:
                await discard_part(part)
                raise
            if total is not None and done != total:
                raise FetchError(f"transfer ended at {done} of {total} bytes", resumable=True)
