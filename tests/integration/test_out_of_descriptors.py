"""A process out of file descriptors answers 503 + Retry-After on direct play and HLS (a moment's
overload, not a missing or broken file), and plays again once descriptors are free."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import httpx
import pytest

from revenge.errors import OutOfDescriptors, raise_if_out_of_descriptors
from tests.live import add_user, live_server, test_settings
from tests.mediagen import write_audio


def test_raise_if_out_of_descriptors() -> None:
    with pytest.raises(OutOfDescriptors):
        raise_if_out_of_descriptors(OSError(24, "Too many open files"))
    raise_if_out_of_descriptors(OSError(2, "No such file"))  # not this one: nothing raised
    raise_if_out_of_descriptors(ValueError("x"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_media_routes_answer_503_while_descriptors_run_out(tmp_path: Path) -> None:
    write_audio(tmp_path / "music" / "tone.mp3", seconds=20.0, tags={"title": "Tone"})
    key = add_user(tmp_path / "data", "alice")
    settings = test_settings(tmp_path / "data", library=(tmp_path / "music",), prefetch_segments=0)
    with live_server(settings) as live, \
            httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        (item,) = [i["id"] for i in c.get("/api/v1/items").json()["items"]]
        direct = f"/api/v1/stream/{item}/direct"
        media = c.get(f"/api/v1/stream/{item}/aac-128/index.m3u8")
        segment = f"/api/v1/stream/{item}/aac-128/" + next(
            line for line in media.text.splitlines() if line.startswith("segment2.m4s"))
        assert c.get(direct).status_code == 200  # the connection stays open (keep-alive) for what follows
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        filler: list[int] = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
            while True:
                try:
                    filler.append(os.open("/dev/null", os.O_RDONLY))
                except OSError:
                    break
            for path in (direct, segment):
                answer = c.get(path)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["Retry-After"] == "1"
                assert answer.json()["error"]["code"] == "unavailable"
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert c.get(direct).status_code == 200
        assert c.get(segment).status_code == 200
