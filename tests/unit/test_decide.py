from __future__ import annotations

import dataclasses

import pytest

from revenge.library.model import Item, MediaFile
from revenge.playback.decide import (
    ClientCapabilities,
    NoCompatibleStream,
    decide,
    is_apple_user_agent,
    normalize_container,
)

LADDER = ("aac-64", "aac-128", "aac-256")


def item(codec: str, container: str, kbps: int, *, files: int = 1, channels: int = 2,
         rate: int = 44100) -> Item:
    seconds = 200
    size = kbps * 1000 * seconds // 8
    media = tuple(
        MediaFile(f"/m/{i}", size // files, 0, container, codec, rate, channels, kbps * 1000,
                  rate * seconds // files)
        for i in range(files)
    )
    return Item("abcdefghijklmnop", "track", "t", None, None, None, None, None, None, media, (), "fp")


FLAC = item("flac", "flac", 900)
MP3 = item("mp3float", "mp3", 320)
M4A = item("aac", "mov,mp4,m4a,3gp,3g2,mj2", 256)
OPUS = item("opus", "ogg", 96)
WAV = item("pcm_s16le", "wav", 1411)
BOOK = item("mp3float", "mp3", 64, files=3, channels=1)

SAFARI = ClientCapabilities.from_lists(["aac", "mp3", "alac"], ["mp4", "mp3"], None, True, apple=True)
CHROME = ClientCapabilities.from_lists(["aac", "opus", "flac", "mp3", "vorbis"],
                                       ["mp4", "mp3", "ogg", "webm", "flac", "wav"], None, True)
LOW = ClientCapabilities.from_lists(["aac", "mp3"], ["mp4", "mp3"], 96_000, True)
FLAC_DIRECT = ClientCapabilities.from_lists(["flac"], ["flac"], None, False)


@pytest.mark.parametrize(
    ("client", "source", "mode", "reasons", "profiles"),
    [
        # Safari/iOS: AAC only, never Opus, no FLAC declared.
        (SAFARI, FLAC, "hls", ("codec_not_supported", "container_not_supported"),
         ("aac-256", "aac-128", "aac-64")),
        (SAFARI, MP3, "direct", (), ()),
        (SAFARI, M4A, "direct", (), ()),
        (SAFARI, OPUS, "hls", ("codec_not_supported", "container_not_supported"),
         ("aac-256", "aac-128", "aac-64")),
        (SAFARI, BOOK, "hls", ("multi_file_item",), ("aac-256", "aac-128", "aac-64")),
        # Chrome with hls.js: takes most originals; a FLAC rung for lossless sources it cannot direct-play.
        (CHROME, FLAC, "direct", (), ()),
        (CHROME, OPUS, "direct", (), ()),
        (CHROME, WAV, "hls", ("codec_not_supported",), ("flac", "opus-128", "aac-256", "aac-128", "aac-64")),
        (CHROME, BOOK, "hls", ("multi_file_item",), ("opus-128", "aac-256", "aac-128", "aac-64")),
        # 96 kbit/s cap: only rungs under the cap; a mono book's rungs are half-rate.
        (LOW, MP3, "hls", ("bitrate_too_high",), ("aac-64",)),
        (LOW, FLAC, "hls", ("codec_not_supported", "container_not_supported", "bitrate_too_high"),
         ("aac-64",)),
        (LOW, BOOK, "hls", ("multi_file_item",), ("aac-128", "aac-64")),
        # A client that takes FLAC files directly and nothing else.
        (FLAC_DIRECT, FLAC, "direct", (), ()),
    ],
)
def test_decision_table(client: ClientCapabilities, source: Item, mode: str,
                        reasons: tuple[str, ...], profiles: tuple[str, ...]) -> None:
    decision = decide(source, client, LADDER)
    assert (decision.mode, decision.reasons, decision.profiles) == (mode, reasons, profiles)


def test_no_compatible_stream_names_the_reasons() -> None:
    with pytest.raises(NoCompatibleStream) as info:
        decide(MP3, FLAC_DIRECT, LADDER)
    assert info.value.reasons == ("codec_not_supported", "container_not_supported", "hls_not_supported")
    only_vorbis = ClientCapabilities.from_lists(["vorbis"], ["ogg"], None, True)
    with pytest.raises(NoCompatibleStream) as info:
        decide(MP3, only_vorbis, LADDER)
    assert info.value.reasons[-1] == "no_hls_codec_in_common"


def test_smallest_rung_offered_when_cap_is_below_all() -> None:
    tiny = ClientCapabilities.from_lists(["aac"], ["mp4"], 32_000, True)
    assert decide(FLAC, tiny, LADDER).profiles == ("aac-64",)


def test_a_client_may_prefer_hls_over_a_file_it_could_play() -> None:
    assert decide(MP3, SAFARI, LADDER).mode == "direct"
    prefers = dataclasses.replace(SAFARI, prefer="hls")
    decision = decide(MP3, prefers, LADDER)
    assert decision.mode == "hls" and decision.reasons == ("hls_preferred",) and decision.profiles


def test_a_preference_for_hls_falls_back_to_the_file_when_no_variant_suits() -> None:
    mp3_only = ClientCapabilities.from_lists(["mp3"], ["mp3"], None, True, prefer="hls")
    assert decide(MP3, mp3_only, LADDER).mode == "direct"
    no_hls = ClientCapabilities.from_lists(["mp3"], ["mp3"], None, False, prefer="hls")
    assert decide(MP3, no_hls, LADDER).mode == "direct"


@pytest.mark.parametrize(
    ("ua", "apple"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", True),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15",
         True),
        ("AppleCoreMedia/1.0.0.21A329 (Apple TV; U; CPU OS 17_0 like Mac OS X; en_us)", True),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", False),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36",
         False),
        ("okhttp/4.12.0", False),
    ],
)
def test_apple_user_agents(ua: str, apple: bool) -> None:
    assert is_apple_user_agent(ua) is apple


def test_container_names() -> None:
    assert normalize_container("mov,mp4,m4a,3gp,3g2,mj2") == "mp4"
    assert normalize_container("M4A") == "mp4"
    assert normalize_container("audio/ogg") == "ogg"
