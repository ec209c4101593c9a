"""The web player in real headless Chromium against a real server over a generated library.

The main test plays a FLAC episode over HLS through hls.js (the page's ``?force=hls`` declares no
direct-play container, because Chromium could play the FLAC file directly), seeks and pauses, checks the
position reached the server, reloads, resumes from the continue-listening shelf at the saved position,
and plays the rest to ``ended`` at 16× with no hls.js error event about the stream, one gapless
buffered range, and no console error (CSP violations are console errors). The others cover sign-in,
browsing and search, direct play, mark played, how API errors are shown, and the phone layout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from revenge.library.ids import item_id
from tests.browser.conftest import PageLog
from tests.live import LiveServer, add_user, live_server
from tests.live import test_settings as make_settings
from tests.mediagen import write_audio

EPISODE_SECONDS = 96
EPISODE_TITLE = "Long Night Episode"
TRACK_TITLE = "Alpha Song"
RENEW_TITLE = "Delta Drift"
RENEW_SECONDS = 60


@dataclass
class Site:
    live: LiveServer
    key: str
    episode_id: str
    track_id: str

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.live.url, headers={"Authorization": f"Bearer {self.key}"},
                            timeout=30)

    def progress(self, item: str) -> dict[str, Any]:
        with self.api() as client:
            response = client.get(f"/api/v1/playback/progress/{item}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("player")
    music, podcasts = base / "music", base / "podcasts"
    # Mono, and the fast AAC coder below: at 16x a 6 s segment is due every 375 ms, and this keeps
    # a cold encode well inside that on a busy 2-core machine (encode speed is the benchmarks' job).
    write_audio(podcasts / "Night Show" / "episode.flac", seconds=EPISODE_SECONDS, kind="music",
                channels=1, tags={"title": EPISODE_TITLE, "artist": "Night Host"})
    write_audio(music / "Artist A" / "Album X" / "01 Alpha.mp3", seconds=20, kind="music",
                tags={"title": TRACK_TITLE, "artist": "Artist A", "album": "Album X"})
    write_audio(music / "Artist B" / "Gamma.flac", seconds=8, kind="sine", freq=440,
                tags={"title": "Gamma Tune", "artist": "Artist B"})
    write_audio(music / "Artist B" / "Delta.flac", seconds=RENEW_SECONDS, kind="music", channels=1,
                tags={"title": RENEW_TITLE, "artist": "Artist B"})
    data = base / "data"
    key = add_user(data, "listener")
    settings = make_settings(data, library=(music,), podcasts=(podcasts,), aac_coder="fast")
    with live_server(settings) as live:
        yield Site(live, key, item_id("episode", "Night Show/episode.flac"),
                   item_id("track", "Artist A/Album X/01 Alpha.mp3"))


def sign_in(page: Page, site: Site, query: str = "") -> None:
    page.goto(f"{site.live.url}/{query}")
    page.fill("#login-key", site.key)
    page.click("#login-submit")
    page.wait_for_selector("#items .item")


def titles(page: Page) -> list[str]:
    return page.locator("#items .item-title").all_text_contents()


def wait_for_titles(page: Page, expected: list[str]) -> None:
    """Until the list shows exactly ``expected`` (in any order). Not a count of rows: the list the
    page showed before (one result of an earlier search) may have the count the next one will have."""
    want = sorted(expected)
    try:
        page.wait_for_function(
            "(want) => JSON.stringify([...document.querySelectorAll('#items .item-title')]"
            ".map((e) => e.textContent).sort()) === JSON.stringify(want)", arg=want)
    except PlaywrightTimeout:
        assert sorted(titles(page)) == want  # says what the page showed instead
        raise


def played_from(page: Page) -> float:
    """Where the element started playing its current source: the start of its first played range.
    Unlike ``startedAt`` (read in the "playing" handler, which runs late on a busy machine while the
    media clock goes on, 16 s per second at 16x), it does not depend on when the page's script runs."""
    # "playing" can come before the clock has moved (an empty played range) on a busy machine.
    page.wait_for_function("() => document.getElementById('audio').played.length > 0")
    value: float = page.evaluate("() => document.getElementById('audio').played.start(0)")
    return value


def diagnostics(page: Page) -> dict[str, Any]:
    value: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.revengeDiagnostics))")
    return value


def stream_errors(page: Page) -> list[dict[str, Any]]:
    """hls.js ERROR events that say something about the stream, which is all of them but two kinds:

    * "aborted": hls.js cancelling its own fragment load after a seek made it useless (its source
      calls this detail internal, not an error);
    * a buffer stall while at least a second was buffered ahead of the playhead: Chromium's audio
      renderer runs dry for a moment when playback starts at 16x on a busy machine (it grows its queue
      after an underflow) and fires "waiting", and hls.js reports any "waiting" after the playhead
      moved as a stall, whatever the buffer holds. A stall for want of data has nothing ahead.
    """
    def excused(error: dict[str, Any]) -> bool:
        if error["details"] == "aborted":
            return True
        if error["details"] != "bufferStalledError" or error["fatal"]:
            return False
        ahead = [end - error["at"] for start, end in error["buffered"] if start <= error["at"] < end]
        return bool(ahead) and ahead[0] >= 1.0

    errors: list[dict[str, Any]] = diagnostics(page)["hlsErrors"]
    renderer_stalls = [e for e in errors if excused(e) and e["details"] != "aborted"]
    assert len(renderer_stalls) <= 2, renderer_stalls  # a moment at the start, not a pattern
    return [e for e in errors if not excused(e)]


def row(page: Page, title: str) -> Any:
    return page.locator("#items .item", has_text=title)


def no_page_errors(log: PageLog) -> None:
    assert log.page_errors == []
    assert log.console_errors == []


def test_sign_in_browse_search_and_sign_out(page: Page, site: Site) -> None:
    page.goto(site.live.url + "/")
    page.fill("#login-key", "not-a-key")
    page.click("#login-submit")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error-text") == "401 unauthorized: invalid API key (field: Authorization)"
    assert page.is_visible("#login")

    page.fill("#login-key", site.key)
    page.click("#login-submit")
    wait_for_titles(page, [EPISODE_TITLE, TRACK_TITLE, "Gamma Tune", RENEW_TITLE])

    page.fill("#search-q", "gamma")
    wait_for_titles(page, ["Gamma Tune"])
    assert page.text_content("#browse-title") == "Results for “gamma”"  # set with the rows

    page.fill("#search-q", "")
    page.select_option("#search-type", "episode")
    wait_for_titles(page, [EPISODE_TITLE])

    page.reload()  # the key is kept in localStorage
    page.wait_for_selector("#items .item")
    assert not page.is_visible("#login")
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("localStorage.getItem('revenge.apiKey')") is None


def test_hls_playback_reports_progress_resumes_after_reload_and_ends(
    page: Page, site: Site, page_log: PageLog
) -> None:
    sign_in(page, site, "?force=hls&player=hlsjs")
    row(page, EPISODE_TITLE).locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    first = diagnostics(page)
    assert first["mode"] == "hls.js"
    assert first["session"]["decision"] == "hls"
    assert first["session"]["url"].startswith(f"/api/v1/stream/{site.episode_id}/playlist.m3u8?t=")
    assert played_from(page) < 1.0  # never played: starts at the beginning

    # Seek to the middle while playing, then pause: both are reported through the session. (37 s is
    # early in a 6 s segment, so playing on does not wait for the next segment's encode.)
    page.evaluate("document.getElementById('audio').currentTime = 37")
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.position >= 37")
    page.wait_for_function("() => document.getElementById('audio').currentTime >= 37.5")
    page.evaluate("document.getElementById('audio').pause()")
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.state === 'paused'")
    paused_at = page.evaluate("document.getElementById('audio').currentTime")
    assert 37.5 <= paused_at < EPISODE_SECONDS - 30
    progress = site.progress(site.episode_id)
    assert progress["position_seconds"] == pytest.approx(paused_at, abs=0.01)
    assert progress["completed"] is False
    assert progress["devices"][0]["device_id"].startswith("web-")
    assert stream_errors(page) == []

    # A reload forgets everything but the key and the device id; the shelf offers the episode. The
    # page plays it at 16x from the start (?rate=16: a rate set before playback, not changed during it).
    page.goto(f"{site.live.url}/?force=hls&player=hlsjs&rate=16")
    card = page.locator("#continue-list .card", has_text=EPISODE_TITLE)
    card.wait_for()
    assert "left" in (card.text_content() or "")
    card.locator(".card-main").click()
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    resumed = diagnostics(page)
    assert resumed["session"]["resume_seconds"] == pytest.approx(paused_at, abs=0.01)
    assert resumed["session"]["session_id"] != first["session"]["session_id"]
    assert paused_at - 0.5 <= played_from(page) <= paused_at + 0.5
    assert page.evaluate("document.getElementById('audio').playbackRate") == 16

    # The rest at 16x, until the element says "ended".
    page.wait_for_function("() => window.revengeDiagnostics.ended === 1", timeout=30_000)
    page.wait_for_function("() => window.revengeDiagnostics.lastReport.state === 'stopped'")
    assert stream_errors(page) == []
    # One gapless range from the resumed segment to the end: continuous timestamps, no hole.
    buffered = diagnostics(page)["bufferedAtEnd"]
    assert len(buffered) == 1, buffered
    assert buffered[0][0] <= paused_at and buffered[0][1] == pytest.approx(EPISODE_SECONDS, abs=0.05)
    done = site.progress(site.episode_id)
    assert done["completed"] is True
    assert done["position_seconds"] == pytest.approx(EPISODE_SECONDS, abs=0.05)
    # A finished episode leaves the shelf.
    page.wait_for_selector("#continue", state="hidden")
    no_page_errors(page_log)


def test_direct_play_seek_and_mark_played(page: Page, site: Site, page_log: PageLog) -> None:
    sign_in(page, site)
    row(page, TRACK_TITLE).locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    state = diagnostics(page)
    assert state["mode"] == "direct"  # Chromium plays MP3 itself: no transcoding
    # Chromium says "maybe" to HLS, but its own player cannot switch codecs between variants: the page
    # keeps hls.js for HLS in every browser but Apple's.
    assert state["capabilities"]["player"] == "hlsjs"
    assert state["session"]["url"].startswith(f"/api/v1/stream/{site.track_id}/direct?t=")
    page.evaluate("document.getElementById('audio').currentTime = 6")
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.position >= 6")
    assert site.progress(site.track_id)["position_seconds"] >= 6

    page.click("#now-stop")
    page.wait_for_selector("#player", state="hidden")
    played = row(page, TRACK_TITLE).locator(".played-toggle")
    played.click()
    page.wait_for_function("() => document.querySelector('#items .item .played-toggle.on') !== null")
    assert played.text_content() == "Played ✓"
    assert site.progress(site.track_id)["completed"] is True
    played.click()
    page.wait_for_function("() => document.querySelector('#items .item .played-toggle.on') === null")
    no_page_errors(page_log)


def test_progress_every_10_seconds_while_playing_and_when_the_page_goes(page: Page, site: Site) -> None:
    sign_in(page, site)

    def heartbeat(request: Request) -> bool:
        return request.method == "POST" and request.url.endswith("/heartbeat")

    with page.expect_request(heartbeat) as start_beat:
        row(page, TRACK_TITLE).locator("button.play").click()
    with page.expect_request(heartbeat, timeout=15_000) as tick_beat:  # nothing else is reported
        page.wait_for_function("() => window.revengeDiagnostics.lastReport?.event === 'progress'",
                               timeout=15_000)
    tick = diagnostics(page)["lastReport"]
    assert tick["state"] == "playing"
    # When the browser sent each (wall time, ms): the interval itself. The times their answers came
    # back (lastReport.at) would also carry the first answer's latency, which is long on a busy machine.
    for beat in (start_beat, tick_beat):
        assert beat.value.response() is not None  # its timing is complete once answered
    sent = [beat.value.timing["startTime"] for beat in (start_beat, tick_beat)]
    assert sent[1] - sent[0] >= 9_900, sent
    assert site.progress(site.track_id)["position_seconds"] == pytest.approx(tick["position"], abs=0.01)

    # Leaving the page sends one last report that outlives it (fetch keepalive on pagehide).
    page.wait_for_function(f"() => document.getElementById('audio').currentTime >= {tick['position'] + 1}")
    session_id = diagnostics(page)["session"]["session_id"]
    page.goto("about:blank")
    deadline = time.monotonic() + 10
    while site.progress(site.track_id)["position_seconds"] < tick["position"] + 1:
        assert time.monotonic() < deadline, "the report sent on pagehide never arrived"
        time.sleep(0.05)
    with site.api() as client:  # a heartbeat writes the session's state before the progress
        assert client.get(f"/api/v1/playback/sessions/{session_id}").json()["state"] == "paused"


def test_reports_go_to_the_progress_api_when_the_session_is_gone(page: Page, site: Site) -> None:
    """A session can end under the page (idle timeout, the same device starting elsewhere): the next
    report finds it gone and goes to PUT /progress instead, with its event."""
    sign_in(page, site, "?force=hls&player=hlsjs")
    row(page, RENEW_TITLE).locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.event === 'start'")
    session_id = diagnostics(page)["session"]["session_id"]
    with site.api() as client:
        assert client.delete(f"/api/v1/playback/sessions/{session_id}").status_code == 204
    page.wait_for_function("() => document.getElementById('audio').currentTime >= 1")
    page.evaluate("document.getElementById('audio').pause()")
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.event === 'pause'")
    paused = diagnostics(page)["lastReport"]
    progress = site.progress(diagnostics(page)["session"]["item_id"])
    assert progress["position_seconds"] == pytest.approx(paused["position"], abs=0.01)
    assert progress["devices"][0]["device_id"] == page.evaluate("localStorage.getItem('revenge.deviceId')")
    assert page.is_hidden("#error")


def test_api_errors_are_shown_with_code_and_field(page: Page, site: Site) -> None:
    # Declaring no codec at all: the server cannot offer anything and says why.
    sign_in(page, site, "?force=hls&codecs=none")
    row(page, "Gamma Tune").locator("button.play").click()
    page.wait_for_selector("#error:not([hidden])")
    text = page.text_content("#error-text") or ""
    assert text.startswith("422 no_compatible_stream: ")
    assert text.endswith("(field: capabilities)")
    assert page.is_hidden("#player")


def test_phone_layout_has_no_horizontal_scroll(page: Page, site: Site) -> None:
    sign_in(page, site, "?force=hls&player=hlsjs")
    row(page, "Gamma Tune").locator("button.play").click()
    page.wait_for_selector("#player:not([hidden])")
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]  # type: ignore[index]
    # Everything the phone user needs is on screen and not under the fixed player bar.
    for selector in ("#search-q", "#search-type", "#logout", "#now-stop", "#audio"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector


def test_native_hls_of_chromium_plays_an_aac_ladder_to_the_end(
    page: Page, site: Site, page_log: PageLog
) -> None:
    """A second, independent HLS client: Chromium's own player, given AAC variants only (one codec
    set, which it needs), plays the server's playlists and segments to the end."""
    if not page.evaluate("document.createElement('audio').canPlayType('application/vnd.apple.mpegurl')"):
        pytest.skip("this Chromium has no HLS player of its own")
    sign_in(page, site, "?force=hls&codecs=aac&player=native&rate=16")
    row(page, "Gamma Tune").locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.ended === 1", timeout=30_000)
    page.wait_for_function("() => window.revengeDiagnostics.lastReport?.state === 'stopped'")
    state = diagnostics(page)
    assert state["mode"] == "native-hls"
    assert state["session"]["profiles"] == ["aac-256", "aac-128", "aac-64"]
    assert state["lastReport"]["position"] == pytest.approx(8.0, abs=0.05)
    assert page.is_hidden("#error")
    no_page_errors(page_log)


def test_refused_stream_token_renews_the_session_where_playback_was(page: Page, site: Site) -> None:
    """A token the server refuses after playback started (as when a tab paused for a day resumes) gets
    a new session at the position reached, once. The refusal is played by the browser's network layer:
    once playback is under way, every stream request gets a 403 until the page starts a new session.
    (Not by token: two sessions started within the same second get the same token.)"""
    refusing: dict[str, bool] = {"on": False}
    refused: list[str] = []

    def refuse_stream(route: Route) -> None:
        if refusing["on"]:
            refused.append(route.request.url)
            route.fulfill(status=403, content_type="application/json",
                          body='{"error": {"code": "token_expired", "message": "expired", "field": "t"}}')
        else:
            route.continue_()

    def new_session(route: Route) -> None:
        refusing["on"] = False
        route.continue_()

    page.route("**/api/v1/stream/**", refuse_stream)
    page.route("**/api/v1/playback/sessions", new_session)
    sign_in(page, site, "?force=hls&player=hlsjs")
    row(page, RENEW_TITLE).locator("button.play").click()
    page.wait_for_function("() => window.revengeDiagnostics.startedAt !== null")
    first = diagnostics(page)["session"]
    refusing["on"] = True
    # Past what hls.js has buffered (30 s ahead of the start), so a new segment must be fetched.
    page.evaluate(f"document.getElementById('audio').currentTime = {RENEW_SECONDS - 10}")
    page.wait_for_function(
        f"() => window.revengeDiagnostics.session.session_id !== '{first['session_id']}' "
        "&& window.revengeDiagnostics.startedAt !== null", timeout=30_000)
    renewed = diagnostics(page)
    assert refused  # the first session's token was refused...
    # ...and the new session starts where the player was: at the seek target.
    assert renewed["session"]["resume_seconds"] == pytest.approx(RENEW_SECONDS - 10, abs=0.5)
    assert played_from(page) == pytest.approx(RENEW_SECONDS - 10, abs=0.5)
    assert page.is_hidden("#error")
    with site.api() as client:  # the old session was ended, not left to time out
        assert client.get(f"/api/v1/playback/sessions/{first['session_id']}").status_code == 404
