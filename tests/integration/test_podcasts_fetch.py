"""The outbound fetcher against a local host: body caps (also after gzip), the redirect cap, the address
guard on a name that resolves to loopback, and a too-large enclosure refused with nothing kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from revenge.podcasts.fetch import Fetcher, FetchError
from tests.feedhost import FeedHost


@pytest.fixture
async def host() -> AsyncIterator[FeedHost]:
    feed_host = FeedHost()
    with feed_host.running():
        yield feed_host


def fetcher(allow_private: bool = True, max_redirects: int = 2) -> Fetcher:
    return Fetcher(allow_private=allow_private, timeout=10, max_redirects=max_redirects, user_agent="test")


async def test_bodies_are_capped_after_decompression(host: FeedHost) -> None:
    url = host.put("/big.xml", b"<rss>" + b" " * 5_000_000 + b"</rss>", "application/rss+xml")
    f = fetcher()
    try:
        assert len((await f.get_bytes(url, 6_000_000)).body) == 5_000_011
        with pytest.raises(FetchError, match="more than 1000000 bytes"):
            await f.get_bytes(url, 1_000_000)  # ~5 KB on the wire, 5 MB unpacked: stopped at 1 MB
    finally:
        await f.aclose()
    assert host.hits_of("/big.xml")[-1].headers["Accept-Encoding"] == "gzip"


async def test_redirects_are_capped(host: FeedHost) -> None:
    target = host.put("/feed.xml", b"<rss/>", "application/rss+xml")
    host.put("/hop1", b"", mode=f"redirect:{target}")
    host.put("/hop2", b"", mode="redirect:/hop1")  # relative Location, resolved against the hop
    f = fetcher(max_redirects=1)
    try:
        assert (await f.get_bytes(host.url + "/hop1", 1000)).body == b"<rss/>"
        with pytest.raises(FetchError, match="more than 1 redirects"):
            await f.get_bytes(host.url + "/hop2", 1000)
    finally:
        await f.aclose()


async def test_a_name_resolving_to_loopback_is_refused(host: FeedHost) -> None:
    host.put("/feed.xml", b"<rss/>", "application/rss+xml")
    f = fetcher(allow_private=False)
    try:
        with pytest.raises(FetchError, match="non-public") as caught:
            await f.get_bytes(f"http://localhost:{host.port}/feed.xml", 1000)
        assert caught.value.unsafe
    finally:
        await f.aclose()
    assert not host.hits


async def test_a_too_large_enclosure_keeps_nothing(host: FeedHost, tmp_path: Path) -> None:
    url = host.put("/big.mp3", b"x" * 50_000)
    part = tmp_path / "part.mp3"
    f = fetcher()
    try:
        with pytest.raises(FetchError, match="more than the 10000 allowed"):
            await f.download(url, part, 10_000, lambda done, total: None)
    finally:
        await f.aclose()
    assert not part.exists()


async def test_a_cut_download_resumes_only_the_same_version(host: FeedHost, tmp_path: Path) -> None:
    first, second = bytes(range(256)) * 400, bytes(reversed(range(256))) * 400
    url = host.put("/e.mp3", first, mode="truncate")
    part = tmp_path / "part.mp3"
    f = fetcher()
    try:
        with pytest.raises(FetchError) as caught:
            await f.download(url, part, 10**6, lambda done, total: None)
        assert caught.value.resumable and part.read_bytes() == first[: len(first) // 2]
        host.resources["/e.mp3"].mode = "ok"
        seen: list[tuple[int, int | None]] = []
        await f.download(url, part, 10**6, lambda done, total: seen.append((done, total)))  # the rest only
        assert seen[0] == (len(first) // 2, len(first)) and seen[-1] == (len(first), len(first))
        assert part.read_bytes() == first
        resumed = host.hits_of("/e.mp3")[-1]
        assert resumed.status == 206 and resumed.headers["If-Range"] == host.resources["/e.mp3"].etag

        part.write_bytes(first[:1000])  # cut again, then the file changes on the host
        host.put("/e.mp3", second)
        await f.download(url, part, 10**6, lambda done, total: None)
        assert part.read_bytes() == second  # fetched whole: never the old start with the new end
        assert host.hits_of("/e.mp3")[-1].status == 200
    finally:
        await f.aclose()
