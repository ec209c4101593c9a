"""A small real library for integration tests: every supported kind of item, generated with PyAV.

``build_library(base)`` writes music, podcast and audiobook folders under ``base`` and returns what
the scan must find: per relative path, the generator's exact sample count and the expected titles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from revenge.config import Settings
from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import Generated, corrupt_file, write_audio


@dataclass(frozen=True)
class Expected:
    type: str
    title: str
    generated: tuple[Generated, ...]
    chapters: tuple[str, ...] = ()

    @property
    def samples(self) -> int:
        return sum(g.samples for g in self.generated)


@dataclass
class Library:
    base: Path
    music: Path
    podcasts: Path
    audiobooks: Path
    items: dict[str, Expected] = field(default_factory=dict)  # by path relative to its root
    corrupt: Path | None = None

    def settings(self, data_dir: Path, **overrides: object) -> Settings:
        return test_settings(data_dir, library=(self.music,), podcasts=(self.podcasts,),
                             audiobooks=(self.audiobooks,), **overrides)

    def by_title(self, title: str) -> Expected:
        return next(e for e in self.items.values() if e.title == title)


@contextlib.contextmanager
def serve_library(lib: Library, data_dir: Path) -> Iterator[tuple[LiveServer, str]]:
    """A live server over ``lib`` (scan finished) and the API key of its one user."""
    key = add_user(data_dir, "listener")
    with live_server(lib.settings(data_dir)) as live:
        yield live, key


@contextlib.contextmanager
def keyed_client(live: LiveServer, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


def build_library(base: Path) -> Library:
    lib = Library(base, base / "music", base / "podcasts", base / "audiobooks")
    music, pods, books = lib.music, lib.podcasts, lib.audiobooks

    def track(rel: str, title: str | None, expect_title: str, tags: dict[str, str] | None = None,
              **kw: Any) -> None:
        all_tags = dict(tags or {})
        if title:
            all_tags["title"] = title
        g = write_audio(music / rel, tags=all_tags, **kw)
        lib.items[rel] = Expected("track", expect_title, (g,))

    album = {"artist": "Artist A", "album": "Album X", "album_artist": "Artist A", "genre": "Rock"}
    track("Artist A/Album X/01 Alpha.flac", "Alpha Song", "Alpha Song", samples=70_001, kind="music",
          tags={**album, "track": "1/2", "disc": "1/1"})
    track("Artist A/Album X/02 Beta.mp3", "Beta Song", "Beta Song", samples=66_150, kind="noise",
          tags={**album, "track": "2/2", "disc": "1/1"})
    track("Artist B/Gamma.m4a", "Gamma Tune", "Gamma Tune", samples=96_000, rate=48_000, freq=440,
          tags={"artist": "Artist B", "genre": "Jazz"})
    track("Artist B/Delta.opus", "Delta Voice", "Delta Voice", samples=72_123, rate=48_000, channels=1,
          tags={"artist": "Artist B"})
    track("Untagged/raw recording.wav", None, "raw recording", samples=44_100, rate=44_100, channels=1)

    g = write_audio(pods / "Show One" / "ep1.mp3", samples=48_000, rate=48_000, channels=1,
                    tags={"title": "Episode One", "artist": "Host"})
    lib.items["Show One/ep1.mp3"] = Expected("episode", "Episode One", (g,))

    book_dir = books / "Author Name" / "The Great Book"
    parts = []
    # Natural order: 1, 2, 10 (plain text order would put 10 second).
    for number, title in ((1, "Opening"), (2, None), (10, "Finale")):
        tags = {"album": "The Great Book", "artist": "Author Name"}
        if title:
            tags["title"] = title
        parts.append(write_audio(book_dir / f"Chapter {number}.mp3", samples=30_000 + number, rate=44_100,
                                 channels=1, tags=tags))
    lib.items["Author Name/The Great Book"] = Expected("audiobook", "The Great Book", tuple(parts),
                                                       ("Opening", "Chapter 2", "Finale"))
    g = write_audio(books / "Other Author" / "Chaptered.m4b", samples=144_000, rate=48_000, channels=1,
                    tags={"title": "Chaptered Book", "artist": "Other Author"},
                    chapters=[(0.0, 1.0, "Intro"), (1.0, 2.0, "Middle"), (2.0, 3.0, "End")])
    lib.items["Other Author/Chaptered.m4b"] = Expected("audiobook", "Chaptered Book", (g,),
                                                       ("Intro", "Middle", "End"))
    lib.corrupt = corrupt_file(music / "Broken" / "corrupt.flac")
    return lib
