"""The pure parts of podcasts: feed fields, chapters, OPML, schedule/jitter/backoff, newest-N and
keep-last-N selection, the outbound address check, file naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge.podcasts import schedule
from revenge.podcasts.feeds import FeedError, parse_clock, parse_feed, parse_json_chapters
from revenge.podcasts.naming import audio_suffix, episode_file_name, safe_name
from revenge.podcasts.netguard import UnsafeUrl, address_allowed, check_url, refuse_addresses
from revenge.podcasts.opml import OpmlFeed, export_opml, parse_opml

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0" xmlns:psc="http://podlove.org/simple-chapters">
<channel><title>The Show</title><description>About things</description><link>http://example.com/</link>
<itunes:image href="http://example.com/show.jpg"/>
<item><title>Two</title><guid isPermaLink="false">guid-2</guid>
  <pubDate>Wed, 02 Dec 2026 10:00:00 GMT</pubDate><itunes:duration>1:02:03</itunes:duration>
  <itunes:season>2</itunes:season><itunes:episode>5</itunes:episode><description>second</description>
  <enclosure url="http://example.com/two.mp3" type="audio/mpeg" length="1234"/>
  <itunes:image href="http://example.com/two.jpg"/>
  <podcast:chapters url="http://example.com/two.json" type="application/json+chapters"/>
  <psc:chapters version="1.2"><psc:chapter start="00:01:30.5" title="Main" href="http://a/"/>
    <psc:chapter start="00:00:00.000" title="Intro"/></psc:chapters>
</item>
<item><title>One</title><pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate><itunes:duration>95</itunes:duration>
  <enclosure url="http://example.com/one.m4a" type="audio/mp4" length="not a number"/></item>
<item><title>A blog post without media</title><guid>post</guid></item>
</channel></rss>"""

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss version="2.0"><channel><title>&lol3;</title></channel></rss>"""


def test_feed_fields() -> None:
    feed = parse_feed(FEED)
    assert (feed.title, feed.description, feed.image, feed.link) == (
        "The Show",
        "About things",
        "http://example.com/show.jpg",
        "http://example.com/",
    )
    assert [e.title for e in feed.episodes] == ["Two", "One"]  # the item without an enclosure is no episode
    two, one = feed.episodes
    assert two.guid == "guid-2" and two.published == 1796205600.0
    assert two.duration_seconds == 3723 and (two.season, two.episode) == (2, 5)
    assert (two.enclosure_url, two.enclosure_type, two.enclosure_length) == (
        "http://example.com/two.mp3",
        "audio/mpeg",
        1234,
    )
    assert two.image == "http://example.com/two.jpg"
    assert two.chapters_url == "http://example.com/two.json"
    assert [(c.start_seconds, c.title, c.url) for c in two.chapters] == [
        (0.0, "Intro", None),
        (90.5, "Main", "http://a/"),
    ]
    assert one.guid == "http://example.com/one.m4a"  # no GUID: the enclosure URL
    assert one.duration_seconds == 95 and one.enclosure_length is None and one.season is None


def test_an_enclosure_url_past_4000_characters_is_no_episode() -> None:
    long = FEED.replace(b"http://example.com/one.m4a", b"http://example.com/" + b"x" * 4000)
    assert [e.title for e in parse_feed(long).episodes] == ["Two"]


def test_entity_bomb_refused_before_feedparser() -> None:
    with pytest.raises(FeedError, match="entities"):
        parse_feed(BOMB)


def test_not_a_feed() -> None:
    with pytest.raises(FeedError):
        parse_feed(b"<html><body>hello</body></html>")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:02:03", 3723),
        ("62:03", 3723),
        ("3723", 3723),
        ("3723.5", 3723.5),
        ("00:01:30.500", 90.5),
        ("", None),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_parse_clock(text: str | None, seconds: float | None) -> None:
    assert parse_clock(text) == seconds


def test_json_chapters() -> None:
    data = (
        b'{"version": "1.2.0", "chapters": [{"startTime": 60, "title": "B", "url": "http://u"},'
        b'{"startTime": 0, "title": "A"}, {"startTime": 30, "title": "hidden", "toc": false},'
        b'{"title": "no start"}]}'
    )
    assert [(c.start_seconds, c.title, c.url) for c in parse_json_chapters(data)] == [
        (0.0, "A", None),
        (60.0, "B", "http://u"),
    ]
    with pytest.raises(FeedError):
        parse_json_chapters(b"[1, 2]")


def test_opml_round_trip() -> None:
    feeds = [OpmlFeed("http://a.example/feed.xml", "A & B"), OpmlFeed("https://b.example/rss?x=1&y=2", "Bé")]
    assert parse_opml(export_opml(feeds)) == feeds


def test_opml_nested_and_deduplicated() -> None:
    data = b"""<opml version="1.0"><body><outline text="folder">
      <outline text="X" xmlUrl="http://x/feed"/><outline text="again" xmlUrl="http://x/feed"/></outline>
      <outline title="Y" xmlUrl="http://y/feed"/></body></opml>"""
    assert parse_opml(data) == [OpmlFeed("http://x/feed", "X"), OpmlFeed("http://y/feed", "Y")]


def test_opml_bomb_and_garbage_refused() -> None:
    with pytest.raises(FeedError, match="entities"):
        parse_opml(BOMB.replace(b"rss", b"opml"))
    with pytest.raises(FeedError):
        parse_opml(b"not xml")
    with pytest.raises(FeedError):
        parse_opml(b"<rss/>")


def test_next_check_jitters_within_ten_percent() -> None:
    assert schedule.next_check(1000, 3600, 0, 0.0) == pytest.approx(1000 + 3240)
    assert schedule.next_check(1000, 3600, 0, 0.5) == pytest.approx(1000 + 3600)
    assert schedule.next_check(1000, 3600, 0, 0.999999) == pytest.approx(1000 + 3960, abs=0.01)
    # Feeds subscribed at the same moment spread over the window instead of all checking together.
    times = {round(schedule.next_check(0, 3600, 0, u / 10)) for u in range(10)}
    assert len(times) == 10


def test_backoff_doubles_to_a_day() -> None:
    delays = [schedule.next_check(0, 3600, failures, 0.5) for failures in range(1, 14)]
    assert delays[:4] == [60, 120, 240, 480]
    assert delays == sorted(delays) and delays[-1] == 86_400


def test_auto_download_off_after_max_failures() -> None:
    assert schedule.auto_download_off(9, 10) is None
    assert "10 failed checks" in (schedule.auto_download_off(10, 10) or "")


def test_newest_n_after_the_newest_known() -> None:
    d = schedule.Dated
    episodes = [d("a", 100), d("b", 300), d("c", 200), d("undated", None), d("d", 50)]
    assert schedule.to_auto_download(episodes, None, 2) == ["b", "c"]  # a new subscription: the newest 2
    assert schedule.to_auto_download(episodes, 150, 5) == ["b", "c"]  # only those newer than known
    assert schedule.to_auto_download(episodes, 300, 5) == []
    assert schedule.to_auto_download(episodes, None, 0) == []


def test_keep_last_drops_the_oldest() -> None:
    d = schedule.Dated
    downloaded = [d("old", 1), d("new", 3), d("mid", 2)]
    assert schedule.to_drop(downloaded, 2) == ["old"]
    assert schedule.to_drop(downloaded, 0) == []
    assert schedule.to_drop(downloaded, 5) == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("172.16.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_address_check(address: str, public: bool) -> None:
    assert address_allowed(address, allow_private=False) is public
    if address not in ("0.0.0.0", "224.0.0.1"):
        assert address_allowed(address, allow_private=True)


def test_one_private_answer_refuses_the_name() -> None:
    refuse_addresses("ok", ["93.184.216.34"], False)
    with pytest.raises(UnsafeUrl):
        refuse_addresses("mixed", ["93.184.216.34", "127.0.0.1"], False)
    with pytest.raises(UnsafeUrl):
        refuse_addresses("none", [], False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x/feed",
        "file:///etc/passwd",
        "gopher://x",
        "http://",
        "/relative",
        "http://user:pw@x/feed",
        "http://x:99999/",
    ],
)
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url)


def test_naming() -> None:
    assert safe_name("a/b\\c: d?*\x00") == "a b c d"
    assert safe_name("...") == "untitled" and safe_name(".hidden") == "hidden"
    assert audio_suffix("http://x/e.MP3?x=1", None) == ".mp3"
    assert audio_suffix("http://x/download?id=3", "audio/mp4") == ".m4a"
    assert audio_suffix("http://x/download", None) == ".mp3"
    assert (
        episode_file_name("Ep 1: Hi", 1796205600.0, ".mp3", "abcdefgh") == "2026-12-02 Ep 1 Hi [abcdef].mp3"
    )


def test_a_body_naming_a_local_file_is_not_read(tmp_path: Path) -> None:
    # feedparser opens a str or bytes argument as a file name when it can: a host answering with a path
    # must not make the server read its own files.
    secret = tmp_path / "secret.xml"
    secret.write_bytes(FEED.replace(b"The Show", b"Secret"))
    with pytest.raises(FeedError):
        parse_feed(str(secret).encode())
