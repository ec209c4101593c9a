"""The music views of the web player in real headless Chromium, over a generated tagged library:
the album grid with covers, an album in disc order, play album (the queue on the server), next,
the next entry starting at the end with its first segment fetched ahead, synced lyrics following the
playhead, search grouped by kind, artist and genre pages, space to pause."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mutagen.flac import FLAC
from playwright.sync_api import Page

from revenge.library.art import ART_SIZES
from revenge.library.ids import item_id
from tests.artgen import write_picture
from tests.browser.conftest import ARTIFACTS, PageLog
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

ALBUM = "Night Drive"
# (file, disc, track, title): the file names sort otherwise than the discs and tracks.
TRACKS = [("a-encore.flac", 2, 1, "Encore"), ("b-second.flac", 1, 2, "Second Street"),
          ("c-start.flac", 1, 1, "Night Start")]
IN_ORDER = ["Night Start", "Second Street", "Encore"]
BOOK = "Chaptered Book"
LRC = "[ti:Night Start]\n[00:00.00]Night begins\n[00:01.50]Street lights\n[00:03.00]Home again\n"


@dataclass
class Site:
    live: LiveServer
    key: str
    ids: dict[str, str]  # title → item id

    def queue(self) -> dict[str, Any]:
        with httpx.Client(base_url=self.live.url, headers={"Authorization": f"Bearer {self.key}"}) as c:
            response = c.get("/api/v1/queue")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("views")
    music = base / "music"
    album = music / "The Testers" / ALBUM
    ids: dict[str, str] = {}
    for name, disc, track, title in TRACKS:
        write_audio(album / name, seconds=6, kind="sine", freq=330 + 110 * track, channels=1,
                    tags={"title": title, "artist": "The Testers", "album_artist": "The Testers",
                          "album": ALBUM, "disc": f"{disc}/2", "track": str(track), "genre": "Electronic",
                          "date": "2024"})
        ids[title] = item_id("track", f"The Testers/{ALBUM}/{name}")
    second = FLAC(album / "b-second.flac")  # two artists as repeated fields: Solo Artist appears on it
    second["ARTIST"] = ["The Testers", "Solo Artist"]
    second.save()
    (album / "c-start.lrc").write_text(LRC)
    write_picture(album / "cover.png", 300, 300, (40, 90, 200))
    write_audio(music / "Solo Artist" / "Quiet Room" / "01 Alone.mp3", seconds=4, kind="sine",
                tags={"title": "Alone", "artist": "Solo Artist", "album_artist": "Solo Artist",
                      "album": "Quiet Room", "track": "1", "genre": "Jazz", "date": "2019"})
    ids["Alone"] = item_id("track", "Solo Artist/Quiet Room/01 Alone.mp3")
    books = base / "books"
    write_audio(books / "Other Author" / "Chaptered.m4b", seconds=6, rate=48_000, channels=1,
                tags={"title": BOOK, "artist": "Other Author"},
                chapters=[(0.0, 2.0, "Intro"), (2.0, 4.0, "Middle"), (4.0, 6.0, "End")])
    data = base / "data"
    key = add_user(data, "listener")
    # Each test is a fresh browser context, so a new device whose session is left to time out: room
    # for all of them under the per-user cap.
    settings = make_settings(data, library=(music,), audiobooks=(books,), aac_coder="fast",
                             sessions_per_user=32)
    with live_server(settings) as live:
        yield Site(live, key, ids)


def sign_in(page: Page, site: Site, query: str = "", route: str = "#/albums") -> None:
    page.goto(f"{site.live.url}/{query}")
    page.fill("#login-key", site.key)
    page.click("#login-submit")
    page.wait_for_selector("#items .item")
    page.evaluate(f"location.hash = '{route}'")


def diagnostics(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.revengeDiagnostics))")
    return value


def wait_playing(page: Page, item: str) -> None:
    """Until ``item`` is the session's and has started playing (its first "playing")."""
    page.wait_for_function(
        "(id) => { const d = window.revengeDiagnostics;"
        " return d.session?.item_id === id && d.startedAt !== null && d.played.at(-1) === id; }", arg=item)


def texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_text_contents()]


def open_album(page: Page) -> None:
    page.locator(".album-card", has_text=ALBUM).locator("a").click()
    page.wait_for_selector(".discs .track")


def no_page_errors(log: PageLog) -> None:
    assert log.page_errors == []
    assert log.console_errors == []


def test_album_grid_shows_covers(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site)
    page.wait_for_function("() => document.querySelectorAll('#view .album-card').length === 2")
    assert texts(page, "#view .album-name") == ["Night Drive", "Quiet Room"]  # A–Z
    card = page.locator(".album-card", has_text=ALBUM)
    page.wait_for_function("(sel) => { const img = document.querySelector(sel);"
                           " return img && img.complete && img.naturalWidth > 0; }",
                           arg=".album-card .cover[data-art-id] img")
    frame = card.locator(".cover")
    assert int(frame.get_attribute("data-size") or 0) in ART_SIZES
    # The album without a picture shows its initial on a tile, not a broken image.
    quiet = page.locator(".album-card", has_text="Quiet Room")
    assert quiet.locator("img").count() == 0 and quiet.locator(".cover-initial").text_content() == "Q"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_albums.png"), full_page=True)
    no_page_errors(page_log)


def test_album_in_disc_order_play_album_fills_the_queue_and_next_plays_the_second(
    page: Page, site: Site, page_log: PageLog
) -> None:
    sign_in(page, site)
    open_album(page)
    assert texts(page, "[data-disc='1'] .track-title") == IN_ORDER[:2]
    assert texts(page, "[data-disc='2'] .track-title") == IN_ORDER[2:]
    assert texts(page, ".disc-title") == ["Disc 1", "Disc 2"]
    assert page.text_content("#album-meta") == "2024 · 3 tracks · 18 s"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_album_page.png"))
    page.click("#album-play")
    wait_playing(page, site.ids["Night Start"])
    page.wait_for_function("() => window.revengeDiagnostics.queue?.items.length === 3")
    queue = site.queue()
    assert queue["items"] == [site.ids[t] for t in IN_ORDER] and queue["current_index"] == 0

    page.click("#now-next")
    wait_playing(page, site.ids["Second Street"])
    assert site.queue()["current_index"] == 1
    page.click("#tab-queue")
    page.wait_for_selector("#queue-list .queue-entry.current")
    assert texts(page, "#queue-list .queue-title") == IN_ORDER
    assert page.locator("#queue-list .queue-entry.current .queue-title").text_content() == "Second Street"
    page.click("#now-prev")
    wait_playing(page, site.ids["Night Start"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_album.png"), full_page=True)
    no_page_errors(page_log)


def test_a_queue_changed_elsewhere_is_changed_on_top_of_it(page: Page, site: Site, page_log: PageLog) -> None:
    """Another device appends while this page has an older version: the page's own append is refused
    (409, with the current queue) and sent again on top of it; nothing is lost. The event stream is
    blocked: its queue event would otherwise bring the newer version before the append."""
    page.route("**/api/v1/events?*", lambda route: route.abort())
    sign_in(page, site)
    open_album(page)
    page.click("#album-play")
    page.wait_for_function("() => window.revengeDiagnostics.queue?.items.length === 3")
    seen = site.queue()
    with httpx.Client(base_url=site.live.url, headers={"Authorization": f"Bearer {site.key}"}) as client:
        response = client.patch("/api/v1/queue", json={
            "version": seen["version"], "device_id": "other-device",
            "ops": [{"op": "append", "items": [site.ids["Alone"]]}]})
        assert response.status_code == 200, response.text
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.status == 409):
        page.locator(".track", has_text="Encore").locator(".track-add").click()
    album = [site.ids[t] for t in IN_ORDER]
    page.wait_for_function("(n) => window.revengeDiagnostics.queue?.items.length === n", arg=5)
    assert site.queue()["items"] == [*album, site.ids["Alone"], site.ids["Encore"]]
    # The 409 is the only failed request, and the page says nothing about it: it was handled.
    assert page.is_hidden("#error")
    assert [e for e in page_log.console_errors if "409" not in e and "/api/v1/events?" not in e] == []


def test_the_next_entry_starts_at_the_end_with_its_first_segment_fetched_ahead(
    page: Page, site: Site, page_log: PageLog
) -> None:
    sign_in(page, site, "?force=hls&player=hlsjs")
    open_album(page)
    page.click("#album-play")
    page.wait_for_function("() => window.revengeDiagnostics.played.length === 3", timeout=60_000)
    state = diagnostics(page)
    assert state["played"] == [site.ids[t] for t in IN_ORDER]
    # Both followers were fetched (playlist, init and first segment) before the entry before them ended.
    # (At 1x: a 6 s entry leaves the prefetch its 6 s; its playlist measures every variant of the ladder.)
    ahead = {p["item"]: p for p in state["prefetched"]}
    for title in IN_ORDER[1:]:
        entry = ahead[site.ids[title]]
        assert entry["before"] > 0 and entry["left"] > 0, entry
        assert any("/segment0.m4s" in url for url in entry["urls"]), entry
    assert len(state["gaps"]) == 2
    print("gaps between entries (ms):", state["gaps"], state["timeline"])
    page.wait_for_function("() => window.revengeDiagnostics.ended === 3")
    page.wait_for_function("() => window.revengeDiagnostics.queue?.current_index === null")
    assert site.queue()["current_index"] is None  # played to the end, repeat off
    no_page_errors(page_log)


def test_synced_lyrics_highlight_the_line_of_the_playhead(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site)
    open_album(page)
    page.locator(".track", has_text="Night Start").locator(".track-play").click()
    wait_playing(page, site.ids["Night Start"])
    page.evaluate("document.getElementById('audio').pause()")
    page.click("#tab-lyrics")
    page.wait_for_function("() => document.querySelectorAll('#lyrics-lines .lyrics-line').length === 3")
    steps = ((2.0, "Street lights"), (3.5, "Home again"), (0.5, "Night begins"), (1.6, "Street lights"))
    for at, line in steps:
        page.evaluate(f"document.getElementById('audio').currentTime = {at}")
        page.wait_for_function(
            "(want) => document.querySelector('#lyrics-lines .lyrics-line.current')?.textContent === want",
            arg=line)
        assert page.locator("#lyrics-lines .current").count() == 1
    # A click on a line seeks to it.
    page.locator("#lyrics-lines .lyrics-line", has_text="Home again").click()
    page.wait_for_function("() => document.getElementById('audio').currentTime >= 3")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_lyrics.png"))
    no_page_errors(page_log)


def test_search_results_grouped_by_kind(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site, route="#/")
    page.fill("#search-q", "testers")
    page.wait_for_function("() => [...document.querySelectorAll('#search-groups .search-group')]"
                           ".map((g) => g.dataset.kind).join() === 'artists,albums,tracks'")
    assert texts(page, "#search-groups .search-artists .chip") == ["The Testers"]
    assert texts(page, "#search-groups .search-albums .album-name") == [ALBUM]
    assert sorted(texts(page, "#search-groups .search-tracks .track-title")) == sorted(IN_ORDER)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_search.png"), full_page=True)
    page.fill("#search-q", "alone")
    page.wait_for_function("() => [...document.querySelectorAll('#search-groups .search-group')]"
                           ".map((g) => g.dataset.kind).join() === 'tracks'")
    assert texts(page, "#search-groups .track-title") == ["Alone"]
    # A track found can be added to the queue from there.
    page.locator("#search-groups .track", has_text="Alone").locator(".track-add").click()
    page.wait_for_function("(id) => window.revengeDiagnostics.queue?.items.at(-1) === id",
                           arg=site.ids["Alone"])
    no_page_errors(page_log)


def test_artist_and_genre_pages(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site)
    open_album(page)
    page.locator(".album-head-artists a", has_text="The Testers").click()
    page.wait_for_selector(".artist-albums .album-card")
    assert texts(page, ".artist-albums .album-name") == [ALBUM]
    page.evaluate("location.hash = '#/artists'")
    page.locator(".name-link", has_text="Solo Artist").click()
    page.wait_for_selector(".artist-appears .album-card")
    assert texts(page, ".artist-albums .album-name") == ["Quiet Room"]
    assert texts(page, ".artist-appears .album-name") == [ALBUM]  # Second Street has them as a track artist
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "view_artist.png"), full_page=True)
    page.click("nav#tabs a[data-tab=genres]")
    page.wait_for_selector(".genre-list .name-link")
    assert texts(page, ".genre-list .name") == ["Electronic", "Jazz"]
    page.locator(".genre-list .name-link", has_text="Jazz").click()
    page.wait_for_function("() => document.querySelector('#view h1')?.textContent === 'Jazz'"
                           " && document.querySelectorAll('#view .album-card').length === 1")
    assert texts(page, "#view .album-name") == ["Quiet Room"]
    no_page_errors(page_log)


def test_space_plays_and_pauses(page: Page, site: Site) -> None:
    sign_in(page, site)
    open_album(page)
    page.locator(".track", has_text="Encore").locator(".track-play").click()
    wait_playing(page, site.ids["Encore"])
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.getElementById('audio').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.getElementById('audio').paused")
    # Typing a space in the search box types it: it does not pause.
    page.click("#search-q")
    page.keyboard.press(" ")
    assert page.evaluate("document.getElementById('audio').paused") is False


def test_book_chapters_follow_the_playhead_and_seek(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site, route="#/")
    page.locator("#items .item", has_text=BOOK).locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    page.evaluate("document.getElementById('audio').pause()")
    page.click("#tab-chapters")
    page.wait_for_function("() => document.querySelectorAll('#chapter-list .chapter').length === 3")
    assert texts(page, "#chapter-list .chapter-title") == ["Intro", "Middle", "End"]
    page.evaluate("document.getElementById('audio').currentTime = 3")
    page.wait_for_function("() => document.querySelector('#chapter-list .chapter.current .chapter-title')"
                           "?.textContent === 'Middle'")
    page.locator("#chapter-list .chapter", has_text="End").locator("button").click()
    page.wait_for_function("() => document.getElementById('audio').currentTime >= 4"
                           " && document.querySelector('#chapter-list .chapter.current .chapter-title')"
                           "?.textContent === 'End'")
    assert page.is_hidden("#tab-lyrics")  # a book: no lyrics to ask for
    no_page_errors(page_log)


def test_the_queue_left_elsewhere_continues_here(page: Page, site: Site, page_log: PageLog) -> None:
    """A queue another device left at its second entry, 2 s in: home offers it, and a click plays that
    entry from there."""
    album = [site.ids[t] for t in IN_ORDER]
    with httpx.Client(base_url=site.live.url, headers={"Authorization": f"Bearer {site.key}"}) as client:
        version = client.get("/api/v1/queue").json()["version"]
        body = {"version": version, "device_id": "other-device", "items": album, "current_index": 1,
                "position_seconds": 2}
        response = client.put("/api/v1/queue", json=body)
        assert response.status_code == 200, response.text
    sign_in(page, site, route="#/")
    page.wait_for_selector("#queue-resume:not([hidden])")
    assert page.text_content("#queue-resume-title") == "▶ Second Street"
    assert "from 0:02 · 2 of 3" in (page.text_content("#queue-resume-sub") or "")
    page.click("#queue-resume-play")
    wait_playing(page, site.ids["Second Street"])
    assert diagnostics(page)["session"]["resume_seconds"] == pytest.approx(2.0)
    assert page.is_hidden("#queue-resume")
    no_page_errors(page_log)
