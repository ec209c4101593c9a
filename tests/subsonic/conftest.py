"""A live server over a small tagged library (album with lyrics and a cover), its users and their
credentials, and the two real Subsonic client libraries pointed at it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from revenge.cli import main as cli_main
from tests.artgen import picture_bytes
from tests.live import LiveServer, add_user, live_server, test_settings
from tests.mediagen import write_audio

LRC = "[00:00.50]First line\n[00:01.20]Second line\n"


@dataclass
class Rest:
    live: LiveServer
    key: str  # the API key of "ann", a listener
    app_password: str  # ann's Subsonic app password
    admin_key: str

    @property
    def port(self) -> int:
        return int(urlsplit(self.live.url).port or 0)

    def get(self, endpoint: str, **params: object) -> httpx.Response:
        query = {"v": "1.16.1", "c": "tests", "f": "json", "apiKey": self.key, **params}
        query = {k: v for k, v in query.items() if v is not None}
        return httpx.get(f"{self.live.url}/rest/{endpoint}", params=query, timeout=30)  # type: ignore[arg-type]

    def json(self, endpoint: str, **params: object) -> dict[str, object]:
        response = self.get(endpoint, **params)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()["subsonic-response"]
        return body


def build_music(music: Path) -> None:
    album = {"artist": "The Testers", "album_artist": "The Testers", "album": "First Light", "genre": "Rock",
             "date": "2004"}
    write_audio(music / "Testers/First Light/01 Dawn.flac", seconds=2.0,
                tags={**album, "title": "Dawn", "track": "1"})
    write_audio(music / "Testers/First Light/02 Noon.mp3", seconds=1.5,
                tags={**album, "title": "Noon", "track": "2"})
    (music / "Testers/First Light/01 Dawn.lrc").write_text(LRC)
    (music / "Testers/First Light/cover.jpg").write_bytes(picture_bytes(300, 300, (200, 40, 40), "JPEG"))
    write_audio(music / "Solo/Quiet.m4a", seconds=1.0,
                tags={"artist": "Solo Act", "title": "Quiet", "album": "Alone", "genre": "Jazz"})


def run_cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(list(args)) == 0
    return out.getvalue()


@pytest.fixture(scope="package")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    base = tmp_path_factory.mktemp("subsonic")
    music, data, podcasts = base / "music", base / "data", base / "podcasts"
    build_music(music)
    # Long enough for a resume position (continue listening starts 30 s in): a bookmark's item.
    write_audio(podcasts / "Show/Long Talk.mp3", seconds=300.0, rate=8000, channels=1,
                tags={"title": "Long Talk", "artist": "Host"})
    admin_key = add_user(data, "boss")
    key = add_user(data, "ann")
    password = run_cli("user", "--data-dir", str(data), "subsonic-password", "ann").strip().splitlines()[-1]
    with live_server(test_settings(data, library=(music,), podcasts=(podcasts,))) as live:
        yield Rest(live, key, password, admin_key)
