"""The pure parts of scrobbling: request bodies and signatures, the meaning of answers, backoff, skips,
metadata, the link's JSON; and the secret box. The local stand-ins' own checks (tests/scrobble_fakes.py)
accept whatever the clients build, whatever the metadata."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.library.model import Item, MediaFile
from revenge.playback.scrobbles import Scrobble
from revenge.scrobblers import lastfm, listenbrainz
from revenge.scrobblers.model import (
    DAY_MS,
    InvalidCredentials,
    Link,
    Outcome,
    ServiceUnavailable,
    TrackMeta,
    backoff_seconds,
    link_json,
    rate_limit_pause,
    retry_after_header,
    skip_reason,
    track_meta,
)
from revenge.security.crypto import SealError, SecretBox, load_or_create_key
from tests.scrobble_fakes import check_submission, lastfm_signature

META = TrackMeta(artist="Ärtist", track="Tränk", album="Album", duration_ms=201_500, track_number=3,
                 recording_mbid="0383dadf-2a4e-4d10-a46a-e9e041da8eb3")
NOW_MS = 1_760_000_000_000


# --- Last.fm ------------------------------------------------------------------------------------------

def test_the_signature_is_md5_of_sorted_name_values_and_the_secret() -> None:
    params = {"method": "auth.getSession", "api_key": "xxx", "token": "yyy"}
    expected = hashlib.md5(b"api_keyxxxmethodauth.getSessiontokenyyyzzz").hexdigest()
    assert lastfm.signature(params, "zzz") == expected
    assert lastfm.signature({**params, "format": "json", "callback": "f"}, "zzz") == expected
    form = lastfm.signed({"method": "auth.getToken"}, "KEY", "SECRET")
    assert form["format"] == "json" and form["api_key"] == "KEY"
    assert form["api_sig"] == lastfm_signature(form, "SECRET")


@given(st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
                       st.text(st.characters(codec="utf-8"), max_size=30), max_size=8),
       st.text(min_size=1, max_size=40))
def test_the_signature_agrees_with_the_stand_in_written_apart(params: dict[str, str], secret: str) -> None:
    form = lastfm.signed(params, "key", secret)
    assert form["api_sig"] == lastfm_signature(form, secret)


def test_scrobble_params_index_every_entry() -> None:
    params = lastfm.scrobble_params("SK", [(1000, META), (2000, TrackMeta("A", "T"))])
    assert params == {"method": "track.scrobble", "sk": "SK", "artist[0]": "Ärtist", "track[0]": "Tränk",
                      "album[0]": "Album", "duration[0]": "202", "trackNumber[0]": "3",
                      "mbid[0]": META.recording_mbid, "timestamp[0]": "1000",
                      "artist[1]": "A", "track[1]": "T", "timestamp[1]": "2000"}
    with pytest.raises(ValueError):
        lastfm.scrobble_params("SK", [(1, META)] * 51)
    with pytest.raises(ValueError):
        lastfm.scrobble_params("SK", [])
    assert lastfm.now_playing_params("SK", TrackMeta("A", "T")) == {
        "method": "track.updateNowPlaying", "sk": "SK", "artist": "A", "track": "T"}


def scrobbled(codes: list[str]) -> bytes:
    entries = [{"ignoredMessage": {"code": c, "#text": ""}} for c in codes]
    return orjson.dumps({"scrobbles": {"scrobble": entries[0] if len(entries) == 1 else entries}})


def test_scrobble_answers() -> None:
    assert lastfm.parse_scrobble(200, {}, scrobbled(["0"]), 1) == Outcome("ok")
    mixed = lastfm.parse_scrobble(200, {}, scrobbled(["0", "3", "1", "5", "0"]), 5)
    assert mixed.kind == "ok" and set(mixed.skipped) == {1, 2} and mixed.held == frozenset({3})
    assert "too old" in mixed.skipped[1] and mixed.retry_after == 3600.0
    for code, kind in ((9, "auth"), (10, "auth"), (13, "auth"), (26, "auth"), (6, "refused"), (11, "retry"),
                       (16, "retry"), (29, "retry"), (8, "retry"), (999, "retry")):
        outcome = lastfm.parse_scrobble(403, {}, orjson.dumps({"error": code, "message": "m"}), 1)
        assert outcome.kind == kind, code
    down = lastfm.parse_scrobble(503, {"retry-after": "12"}, b"<html>", 1)
    assert (down.kind, down.retry_after) == ("retry", 12.0)
    assert lastfm.parse_scrobble(200, {}, b"{}", 0) == Outcome("ok")


def test_auth_answers() -> None:
    assert lastfm.parse_token(200, b'{"token": "abc"}') == "abc"
    with pytest.raises(ServiceUnavailable):
        lastfm.parse_token(200, b'{"error": 11, "message": "offline"}')
    ok = orjson.dumps({"session": {"name": "rj", "key": "SK", "subscriber": 0}})
    assert lastfm.parse_session(200, ok) == ("rj", "SK")
    for code in (4, 14, 15):
        with pytest.raises(InvalidCredentials):
            lastfm.parse_session(403, orjson.dumps({"error": code, "message": "no"}))
    with pytest.raises(ServiceUnavailable):
        lastfm.parse_session(502, b"bad gateway")
    url = lastfm.auth_url("https://www.last.fm/api/auth", "KEY", "TOK", "https://me.example/cb?x=1")
    assert url == "https://www.last.fm/api/auth/?api_key=KEY&token=TOK&cb=https%3A%2F%2Fme.example%2Fcb%3Fx%3D1"


# --- ListenBrainz -------------------------------------------------------------------------------------

def test_listenbrainz_bodies() -> None:
    single = listenbrainz.submit_body([(1_700_000_000, META)])
    assert single["listen_type"] == "single"
    (listen,) = single["payload"]
    assert listen["listened_at"] == 1_700_000_000
    assert listen["track_metadata"]["artist_name"] == "Ärtist"
    assert listen["track_metadata"]["additional_info"]["duration_ms"] == 201_500
    assert listenbrainz.submit_body([(1_700_000_000, META)] * 2)["listen_type"] == "import"
    now = listenbrainz.playing_now_body(META)
    assert now["listen_type"] == "playing_now" and "listened_at" not in now["payload"][0]
    for body in (single, now, listenbrainz.submit_body([(1_700_000_000, META)] * 1000)):
        check_submission(body)
    with pytest.raises(ValueError):
        listenbrainz.submit_body([(1, META)] * 1001)


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=200).filter(
    lambda s: s.strip() != "")


@given(names, names, st.none() | names, st.none() | st.integers(1, 10**7))
def test_the_stand_in_accepts_every_body_the_client_builds(artist: str, track: str, album: str | None,
                                                            duration: int | None) -> None:
    meta = TrackMeta(artist=artist, track=track, album=album, duration_ms=duration)
    check_submission(listenbrainz.submit_body([(1_700_000_000, meta), (1_700_000_300, meta)]))
    check_submission(listenbrainz.playing_now_body(meta))


def test_listenbrainz_answers() -> None:
    assert listenbrainz.parse_submit(200, {}, b'{"status": "ok"}') == Outcome("ok")
    spent = {"x-ratelimit-remaining": "0", "x-ratelimit-reset-in": "9"}
    paused = listenbrainz.parse_submit(200, spent, b"{}")
    assert (paused.kind, paused.retry_after) == ("ok", 9.0)
    assert listenbrainz.parse_submit(401, {}, b'{"code": 401, "error": "Invalid"}').kind == "auth"
    refused = listenbrainz.parse_submit(400, {}, b'{"code": 400, "error": "listened_at too low"}')
    assert refused.kind == "refused" and "listened_at too low" in refused.message
    limited = listenbrainz.parse_submit(429, {"retry-after": "5"}, b"{}")
    assert (limited.kind, limited.retry_after) == ("retry", 5.0)
    assert listenbrainz.parse_submit(502, {}, b"<html>").kind == "retry"
    assert listenbrainz.parse_validate(200, b'{"valid": true, "user_name": "rob"}') == "rob"
    with pytest.raises(InvalidCredentials):
        listenbrainz.parse_validate(200, b'{"valid": false, "message": "Token invalid."}')
    with pytest.raises(ServiceUnavailable):
        listenbrainz.parse_validate(500, b"oops")


# --- rules ---------------------------------------------------------------------------------------------

def test_retry_after_and_rate_limit_headers() -> None:
    assert retry_after_header({"retry-after": "30"}) == 30.0
    assert retry_after_header({"x-ratelimit-reset-in": "4"}) == 4.0
    assert retry_after_header({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_header({"retry-after": "99999999"}) == 6 * 3600  # clamped
    assert rate_limit_pause({"x-ratelimit-remaining": "3", "x-ratelimit-reset-in": "9"}) is None


@given(st.integers(1, 100), st.floats(0, 0.999999), st.none() | st.floats(0, 10**6))
def test_backoff_grows_is_jittered_capped_and_honours_retry_after(failures: int, rand: float,
                                                                 retry_after: float | None) -> None:
    wait = backoff_seconds(failures, 2.0, rand, retry_after)
    ceiling = min(3600.0, 2.0 * 2 ** (failures - 1))
    assert wait >= ceiling / 2
    assert wait <= max(ceiling, min(retry_after or 0, 6 * 3600))
    if retry_after is not None:
        assert wait >= min(retry_after, 6 * 3600)


def item(**fields: object) -> Item:
    media = MediaFile("/x.mp3", 1, 1, "mp3", "mp3", 44_100, 2, 1, 44_100 * 10)
    base: dict[str, object] = dict(id="a" * 16, type="track", title="T", artist="A", album=None,
                                   album_artist=None, track_number=None, disc_number=None, genre=None,
                                   files=(media,), chapters=(), fingerprint="f")
    return Item(**{**base, **fields})  # type: ignore[arg-type]


def test_track_meta_and_skips() -> None:
    meta = track_meta(item(album="B", album_artist="C"))
    assert meta == TrackMeta(artist="A", track="T", album="B", album_artist="C", duration_ms=10_000)
    assert track_meta(item(artist=None, album_artist="C")) == TrackMeta(
        artist="C", track="T", album_artist="C", duration_ms=10_000)
    assert track_meta(item(artist="  ")) is None
    assert track_meta(item(type="episode")) is None
    record = Scrobble("u", "a" * 16, "track", NOW_MS - 15 * DAY_MS, 1, "d", "client", 1)
    assert skip_reason("listenbrainz", record, meta, NOW_MS) is None
    assert "14 days" in (skip_reason("lastfm", record, meta, NOW_MS) or "")
    assert skip_reason("lastfm", record, meta, NOW_MS - DAY_MS) is None
    assert "artist" in (skip_reason("listenbrainz", record, None, NOW_MS) or "")
    ancient = Scrobble("u", "a" * 16, "track", 1_000_000_000_000, 1, "d", "client", 1)  # 2001
    assert "2002" in (skip_reason("listenbrainz", ancient, meta, NOW_MS) or "")


def test_link_json_never_shows_the_secret() -> None:
    link = Link("u", "lastfm", "rj", "v1.SEALED", 5, stopped="bad key", last_error="bad key", last_error_at=6)
    body = link_json("lastfm", link, 3, True)
    assert "v1.SEALED" not in orjson.dumps(body).decode()
    assert body == {"service": "lastfm", "configured": True, "state": "stopped", "account": "rj",
                    "linked_at": 5, "last_sent_at": None, "outbox": 3,
                    "last_error": {"message": "bad key", "at": 6, "permanent": True}}
    assert link_json("listenbrainz", None, 0, True)["state"] == "unlinked"


# --- the secret box -----------------------------------------------------------------------------------

def test_sealed_secrets_open_only_in_their_context_and_untampered(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "secrets-key").st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key
    box = SecretBox(key)
    sealed = box.seal("token-123", "lastfm:u1")
    assert "token-123" not in sealed and sealed != box.seal("token-123", "lastfm:u1")  # a fresh nonce
    assert box.open(sealed, "lastfm:u1") == "token-123"
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for value, context in ((sealed, "lastfm:u2"), (tampered, "lastfm:u1"), ("plain", "lastfm:u1"),
                           ("v1.!!!", "lastfm:u1")):
        with pytest.raises(SealError):
            box.open(value, context)
    with pytest.raises(SealError):
        SecretBox(os.urandom(32)).open(sealed, "lastfm:u1")
    assert repr(box) == "SecretBox(<key>)"
    (tmp_path / "secrets-key").write_text("short\n")
    with pytest.raises(ValueError, match="damaged"):
        load_or_create_key(tmp_path)
