"""The system's libmp3lame is what PyAV's FFmpeg encodes MP3 with, when there is one: loaded into the
global symbol scope by ``import revenge`` before anything loads PyAV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from revenge.system_lame import prefer_system_lame

ROOT = Path(__file__).resolve().parents[2]

# Which library the process' global scope gives ``lame_init`` from: what libavcodec binds to.
PROBE = """
import ctypes, sys
import revenge, av
class Info(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
info = Info()
address = ctypes.cast(ctypes.CDLL(None).lame_init, ctypes.c_void_p)
ctypes.CDLL("libdl.so.2").dladdr(address, ctypes.byref(info))
print(revenge.SYSTEM_LAME, info.fname.decode())
"""


def system_lame_present() -> bool:
    folders = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib")
    return any(Path(folder, "libmp3lame.so.0").exists() for folder in folders)


@pytest.mark.skipif(not system_lame_present(), reason="no system libmp3lame")
def test_import_revenge_puts_the_system_lame_before_the_wheels() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout.split()
    version, library = out
    assert version.startswith("3.")
    assert "av.libs" not in library and Path(library).name == "libmp3lame.so.0"


def test_nothing_is_taken_too_late_or_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import av  # loaded: FFmpeg's symbols are bound already

    assert av and prefer_system_lame() is None
    monkeypatch.delitem(sys.modules, "av")  # as if not loaded yet
    assert prefer_system_lame("libno-such-lame.so.0") is None
