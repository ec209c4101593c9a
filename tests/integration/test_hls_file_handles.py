"""The transcoder closes the files it opens for itself, also when decoding fails (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge.hls import decode
from revenge.hls.seek_index import FileWindow, SeekPoint
from revenge.library.probe import probe_file
from tests.mediagen import write_audio


@pytest.mark.parametrize("offset", [0, 10**9])  # a readable window, and one past the end (no MP3 in it)
def test_decoding_from_a_seek_point_closes_its_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      offset: int) -> None:
    path = tmp_path / "a.mp3"
    write_audio(path, seconds=1.0)
    media = probe_file(path).file
    windows: list[FileWindow] = []

    class Recorded(FileWindow):
        def __init__(self, path: str, offset: int) -> None:
            super().__init__(path, offset)
            windows.append(self)

    monkeypatch.setattr(decode, "FileWindow", Recorded)
    try:
        decode._decode_into(media, 0, 1000, "fltp", "stereo", seek=True, point=SeekPoint(offset, 0))
    except Exception:  # the window past the end fails; that the window is closed is what matters
        # Checked while the exception (and so the decoder's frame) is still alive: no garbage collector
        # may be what closes the file.
        assert len(windows) == 1 and windows[0].closed
    else:
        assert len(windows) == 1 and windows[0].closed
