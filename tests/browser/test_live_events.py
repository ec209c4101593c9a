"""Live events in real headless Chromium, two browser contexts as two devices of one user: B's queue
panel follows what A does to the queue, a command sent from A is obeyed by B, "Playing on <A>" on B
continues A's item at A's position, and a dropped event stream reconnects and gets what it missed
(replayed after its last event id, no resync)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import Browser, Page, Request, Route

from tests.browser.conftest import PHONE, PageLog
from tests.browser.test_library_views import (
    IN_ORDER,
    Site,
    diagnostics,
    no_page_errors,
    open_album,
    sign_in,
    wait_playing,
)
from tests.browser.test_library_views import site as site
from tests.netdrop import dropping_proxy


@pytest.fixture
def second_log() -> PageLog:
    return PageLog()


@pytest.fixture
def second(browser: Browser, second_log: PageLog) -> Iterator[Page]:
    """Device B: a context of its own (its own localStorage, so its own device id)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.on("console", second_log.on_console)
    tab.on("pageerror", lambda exc: second_log.page_errors.append(str(exc)))
    yield tab
    context.close()


def connected(page: Page) -> None:
    page.wait_for_function("() => window.revengeDiagnostics.events?.connected === true")


def device_of(page: Page) -> str:
    value: str = page.evaluate("() => localStorage.getItem('revenge.deviceId')")
    return value


def both_signed_in(a: Page, b: Page, site: Site) -> tuple[str, str]:
    sign_in(a, site)
    sign_in(b, site, route="#/")
    connected(a)
    connected(b)
    return device_of(a), device_of(b)


def send_command(page: Page, device: str, body: dict[str, Any]) -> int:
    """A command from ``page``'s device to ``device``, sent by the page with its own key."""
    status: int = page.evaluate(
        """async ([device, body]) => {
          const response = await fetch(`/api/v1/devices/${device}/commands`, { method: "POST",
            headers: { Authorization: `Bearer ${localStorage.getItem("revenge.apiKey")}`,
                       "Content-Type": "application/json" },
            body: JSON.stringify({ ...body, from_device: localStorage.getItem("revenge.deviceId") }) });
          return response.status;
        }""", [device, body])
    return status


def queue_panel(page: Page, count: int) -> None:
    page.wait_for_function("(n) => document.querySelectorAll('#queue-list .queue-entry').length === n",
                           arg=count)


def test_b_follows_the_queue_a_changes(page: Page, second: Page, site: Site, page_log: PageLog,
                                       second_log: PageLog) -> None:
    device_a, _ = both_signed_in(page, second, site)
    open_album(page)
    page.click("#album-play")
    wait_playing(page, site.ids[IN_ORDER[0]])
    queue_panel(second, 3)  # no reload, no request: the queue event
    second.wait_for_selector("#remote:not([hidden])")
    assert f"Playing on {device_a}: {IN_ORDER[0]}" in (second.text_content("#remote-text") or "")

    page.locator(".track", has_text=IN_ORDER[1]).locator(".track-add").click()
    queue_panel(second, 4)
    titles = [t.strip() for t in second.locator("#queue-list .queue-title").all_text_contents()]
    assert titles == [*IN_ORDER, IN_ORDER[1]]
    page.click("#tab-queue")
    page.click("#queue-clear")
    second.wait_for_selector("#queue-list .empty", state="attached")
    assert "resync" not in diagnostics(second)["events"]["received"]
    no_page_errors(page_log)
    no_page_errors(second_log)


def test_a_page_opened_while_another_device_plays_shows_it(page: Page, second: Page, site: Site,
                                                            second_log: PageLog) -> None:
    """No event tells B (A paused before B came, so no more come): its first stream has nothing to
    replay, so it reads the device list."""
    sign_in(page, site)
    open_album(page)
    page.click("#album-play")
    wait_playing(page, site.ids[IN_ORDER[0]])
    with page.expect_response(lambda r: r.url.endswith("/heartbeat") and r.ok
                              and '"state":"paused"' in (r.request.post_data or "")):
        page.evaluate("() => document.getElementById('audio').pause()")
    sign_in(second, site, route="#/")
    second.wait_for_selector("#remote:not([hidden])")
    assert f"Paused on {device_of(page)}: {IN_ORDER[0]}" in (second.text_content("#remote-text") or "")
    no_page_errors(second_log)


def test_b_obeys_the_commands_a_sends(page: Page, second: Page, site: Site, page_log: PageLog,
                                      second_log: PageLog) -> None:
    _, device_b = both_signed_in(page, second, site)
    second.evaluate("location.hash = '#/albums'")
    open_album(second)
    second.click("#album-play")
    wait_playing(second, site.ids[IN_ORDER[0]])

    assert send_command(page, device_b, {"command": "pause"}) == 202
    second.wait_for_function("() => document.getElementById('audio').paused")
    assert send_command(page, device_b, {"command": "volume", "level": 0.25}) == 202
    second.wait_for_function("() => document.getElementById('audio').volume === 0.25")
    assert send_command(page, device_b, {"command": "seek", "position_seconds": 4}) == 202
    second.wait_for_function("() => Math.abs(document.getElementById('audio').currentTime - 4) < 0.5")
    assert send_command(page, device_b, {"command": "play"}) == 202
    second.wait_for_function("() => !document.getElementById('audio').paused")
    assert send_command(page, device_b, {"command": "next"}) == 202
    wait_playing(second, site.ids[IN_ORDER[1]])
    assert diagnostics(second)["events"]["commands"] == ["pause", "volume", "seek", "play", "next"]
    no_page_errors(page_log)
    no_page_errors(second_log)


def test_continue_here_plays_at_the_other_devices_position(page: Page, second: Page, site: Site,
                                                           page_log: PageLog, second_log: PageLog) -> None:
    device_a, _ = both_signed_in(page, second, site)
    open_album(page)
    page.click("#album-play")
    wait_playing(page, site.ids[IN_ORDER[0]])
    # A stops at 3 s (a known place: a playing device moves on while the test looks).
    page.evaluate("() => { const a = document.getElementById('audio'); a.pause(); a.currentTime = 3; }")
    second.wait_for_function(
        "(text) => document.getElementById('remote-text').textContent.startsWith(text)"
        " && document.getElementById('remote-text').textContent.endsWith('· 0:03')",
        arg=f"Paused on {device_a}: {IN_ORDER[0]}")
    second.click("#remote-here")
    wait_playing(second, site.ids[IN_ORDER[0]])
    assert diagnostics(second)["session"]["resume_seconds"] == pytest.approx(3.0, abs=0.5)
    assert second.is_hidden("#remote")
    page.wait_for_function("() => window.revengeDiagnostics.events.commands.includes('pause')")
    assert page.evaluate("() => document.getElementById('audio').paused")
    no_page_errors(page_log)
    no_page_errors(second_log)


def only_the_drop(log: PageLog) -> None:
    """The cut stream (and a token asked for while down) is all the browser logs: nothing thrown."""
    assert log.page_errors == []
    assert [e for e in log.console_errors if "/api/v1/events" not in e] == []


def test_a_dropped_stream_reconnects_and_gets_what_it_missed(page: Page, second: Page, site: Site,
                                                              page_log: PageLog, second_log: PageLog) -> None:
    """B reaches the server through a proxy that cuts its connections: its stream ends mid-response,
    and while the network is down A changes the queue; back up, B opens a new stream (a new token)
    with the last event id it had and gets the change replayed, with no resync."""
    with dropping_proxy(site.live.url) as proxy:
        streams: list[str] = []
        token_requests: list[str] = []

        def on_request(request: Request) -> None:
            if urlparse(request.url).path == "/api/v1/events":
                streams.append(request.url)
            elif urlparse(request.url).path == "/api/v1/events/token":
                token_requests.append(request.url)

        second.on("request", on_request)
        sign_in(page, site)
        sign_in(second, Site(replace(site.live, url=proxy.url), site.key, site.ids), route="#/")
        connected(page)
        connected(second)
        open_album(page)
        page.click("#album-play")
        queue_panel(second, 3)

        proxy.drop()
        second.wait_for_function("() => window.revengeDiagnostics.events.connected === false")
        seen = diagnostics(second)["events"]["lastEventId"]  # A's progress events came until the drop
        assert seen
        page.locator(".track", has_text=IN_ORDER[2]).locator(".track-add").click()
        page.wait_for_function("() => window.revengeDiagnostics.queue?.items.length === 4")
        assert second.evaluate("() => window.revengeDiagnostics.queue.items.length") == 3

        proxy.restore()
        queue_panel(second, 4)
        events = diagnostics(second)["events"]
        assert events["connects"] == 2
        assert "resync" not in events["received"]
        # The new stream asked for what followed the last event B had, with a token asked for anew
        # (two tokens issued within one second are the same string: they sign the same expiry).
        resumed = parse_qs(urlparse(streams[-1]).query)
        assert resumed["last_event_id"] == [seen]
        assert len(token_requests) >= 2
        assert "last_event_id" not in parse_qs(urlparse(streams[0]).query)
    no_page_errors(page_log)
    only_the_drop(second_log)


def test_a_stream_the_backlog_cannot_resume_resyncs(page: Page, second: Page, site: Site,
                                                     page_log: PageLog, second_log: PageLog) -> None:
    """B comes back with an id the backlog no longer holds (as after a server restart: the reconnect's
    ``last_event_id`` is rewritten to one): the server says resync, and B re-reads the queue, then
    follows live again from the resync's id."""
    with dropping_proxy(site.live.url) as proxy:
        sign_in(page, site)
        sign_in(second, Site(replace(site.live, url=proxy.url), site.key, site.ids), route="#/")
        connected(page)
        connected(second)
        open_album(page)
        page.click("#album-play")
        queue_panel(second, 3)

        proxy.drop()
        second.wait_for_function("() => window.revengeDiagnostics.events.connected === false")

        def forgotten(route: Route) -> None:
            parts = urlparse(route.request.url)
            query = parse_qs(parts.query)
            if "last_event_id" in query:
                query["last_event_id"] = ["1-0"]
            route.continue_(url=parts._replace(query=urlencode(query, doseq=True)).geturl())

        second.route("**/api/v1/events?*", forgotten)
        page.locator(".track", has_text=IN_ORDER[2]).locator(".track-add").click()
        page.wait_for_function("() => window.revengeDiagnostics.queue?.items.length === 4")
        with second.expect_response(lambda r: urlparse(r.url).path == "/api/v1/queue"
                                    and r.request.method == "GET"):
            proxy.restore()
        queue_panel(second, 4)
        assert diagnostics(second)["events"]["received"].count("resync") == 1
        page.locator(".track", has_text=IN_ORDER[0]).locator(".track-add").click()
        queue_panel(second, 5)  # live again after the resync
    no_page_errors(page_log)
    only_the_drop(second_log)
