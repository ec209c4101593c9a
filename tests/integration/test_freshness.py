"""A file replaced in place between scans: the server notices it before it serves media (one stat per
file per request), probes the file again and serves the new audio under a new ``v=`` (over real
HTTP); the refresh itself on a catalog (a book re-probes only its changed file)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import revenge.library.scan as scan_module
from revenge.library.catalog import Catalog
from revenge.library.freshness import is_fresh, refresh_item
from revenge.library.ids import item_id
from revenge.library.scan import scan_library
from revenge.library.scan_status import ScanStatus
from tests.hls_support import decode_file
from tests.live import add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import corrupt_file, write_audio

RATE = 44_100
TRACK = "tone.flac"


def stream(rel: str) -> str:
    return f"/api/v1/stream/{item_id('track', rel)}"


def dominant_hz(path: Path) -> float:
    samples, rate = decode_file(path)
    mono = samples.mean(axis=0)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    return float(np.fft.rfftfreq(mono.size, 1 / rate)[int(np.argmax(spectrum))])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    music = tmp_path / "music"
    write_audio(music / TRACK, seconds=12.0, rate=RATE, freq=770.0)
    write_audio(music / "other.flac", seconds=2.0, rate=RATE, freq=550.0)
    data = tmp_path / "data"
    key = add_user(data, "listener")
    with live_server(make_settings(data, library=(music,))) as live, httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        yield client, music


def media_playlist(client: httpx.Client, rel: str) -> tuple[float, str, str]:
    """(sum of EXTINF, the v= of its URIs, its stream token) of the aac-128 media playlist."""
    response = client.get(f"{stream(rel)}/aac-128/index.m3u8")
    assert response.status_code == 200, response.text
    text = response.text
    versions = set(re.findall(r"[?&]v=(\w+)", text))
    tokens = set(re.findall(r"[?&]t=([^&\s\"]+)", text))
    assert len(versions) == 1 and len(tokens) == 1, text
    seconds = sum(float(x) for x in re.findall(r"^#EXTINF:([0-9.]+),", text, re.M))
    return seconds, versions.pop(), tokens.pop()


def segment_hz(client: httpx.Client, rel: str, version: str, token: str, tmp: Path) -> float:
    params = {"t": token, "v": version}
    init = client.get(f"{stream(rel)}/aac-128/init.mp4", params=params)
    segment = client.get(f"{stream(rel)}/aac-128/segment0.m4s", params=params)
    assert init.status_code == 200 and segment.status_code == 200, segment.text
    tmp.write_bytes(init.content + segment.content)
    return dominant_hz(tmp)


def replace_in_place(path: Path, **audio: object) -> None:
    """New content under the same path (and inode), as an editor or a tagger's rewrite does."""
    fresh = path.with_name("incoming" + path.suffix)
    write_audio(fresh, **audio)  # type: ignore[arg-type]
    shutil.copyfile(fresh, path)
    fresh.unlink()


def test_a_file_replaced_in_place_is_served_as_it_is_now(served: tuple[httpx.Client, Path],
                                                          tmp_path: Path) -> None:
    client, music = served
    seconds, old_version, token = media_playlist(client, TRACK)
    assert seconds == pytest.approx(12.0, abs=0.05)
    assert segment_hz(client, TRACK, old_version, token, tmp_path / "a.mp4") == pytest.approx(770, abs=10)

    replace_in_place(music / TRACK, seconds=7.5, rate=RATE, freq=330.0)

    seconds, new_version, token = media_playlist(client, TRACK)
    assert seconds == pytest.approx(7.5, abs=0.05)
    assert new_version != old_version
    assert segment_hz(client, TRACK, new_version, token, tmp_path / "b.mp4") == pytest.approx(330, abs=10)
    stale = client.get(f"{stream(TRACK)}/aac-128/segment1.m4s", params={"t": token, "v": old_version})
    assert stale.status_code == 404 and stale.json()["error"]["code"] == "stale"
    # The catalog itself was brought up to date, not just the stream.
    item = client.get(f"/api/v1/items/{item_id('track', TRACK)}").json()
    assert item["duration_ms"] == 7500
    direct = client.get(f"{stream(TRACK)}/direct")
    assert direct.status_code == 200 and len(direct.content) == (music / TRACK).stat().st_size


def test_a_file_gone_or_replaced_by_junk_is_dropped_with_404(served: tuple[httpx.Client, Path]) -> None:
    client, music = served
    media_playlist(client, TRACK)
    media_playlist(client, "other.flac")
    corrupt_file(music / TRACK)
    (music / "other.flac").unlink()
    for rel in (TRACK, "other.flac"):
        for path in ("/aac-128/index.m3u8", "/direct"):
            response = client.get(stream(rel) + path)
            assert response.status_code == 404, (rel, path, response.text)
            assert response.json()["error"]["code"] in ("file_missing", "not_found")
        assert client.get(f"/api/v1/items/{item_id('track', rel)}").status_code == 404
    failures = client.get("/api/v1/library/failures").json()["failures"]
    assert [f["path"] for f in failures] == [TRACK] and failures[0]["reason"]


def test_refresh_probes_only_the_changed_file_of_a_book(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    books = tmp_path / "books"
    for n in (1, 2, 3):
        write_audio(books / "Author" / "Book" / f"Part {n}.mp3", seconds=1.0, rate=RATE,
                    tags={"album": "Book"})
    catalog = Catalog(tmp_path / "catalog.db")
    try:
        scan_library(make_settings(tmp_path / "data", audiobooks=(books,)), catalog, ScanStatus())
        book_id = item_id("audiobook", "Author/Book")
        before = catalog.get_item(book_id)
        assert before is not None and is_fresh(before) and refresh_item(catalog, book_id) == before
        probed: list[Path] = []
        real = scan_module.probe_file
        monkeypatch.setattr(scan_module, "probe_file", lambda p, *a: probed.append(p) or real(p, *a))
        replace_in_place(books / "Author" / "Book" / "Part 2.mp3", seconds=2.5, rate=RATE)
        assert not is_fresh(before)
        after = refresh_item(catalog, book_id)
        assert probed == [books / "Author" / "Book" / "Part 2.mp3"]
        assert after is not None and is_fresh(after) and after.fingerprint != before.fingerprint
        assert after.title == "Book" and after.duration_ms == 4500 and len(after.chapters) == 3
        assert catalog.get_item(book_id) == after
        (books / "Author" / "Book" / "Part 1.mp3").unlink()
        shorter = refresh_item(catalog, book_id)
        assert shorter is not None and shorter.duration_ms == 3500 and len(shorter.files) == 2
    finally:
        catalog.close()
