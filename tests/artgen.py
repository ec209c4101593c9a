"""Audio files with cover art and lyrics for the art tests: pictures made with Pillow, attached with the
ffmpeg CLI (as taggers do) or written with mutagen (SYLT/USLT, FLAC and Ogg picture blocks)."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

from PIL import Image


def picture_bytes(width: int, height: int, color: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


def write_picture(path: Path, width: int, height: int, color: tuple[int, int, int],
                  fmt: str = "PNG") -> bytes:
    data = picture_bytes(width, height, color, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def attach_with_ffmpeg(audio: Path, picture: Path, metadata: dict[str, str] | None = None,
                       front: bool = True) -> None:
    """Attach ``picture`` as the cover of ``audio`` (mp3, m4a, flac) in place, and set tags."""
    out = audio.with_name(audio.stem + ".tmp" + audio.suffix)
    command = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(audio), "-i", str(picture),
               "-map", "0", "-map", "1", "-c", "copy", "-disposition:v", "attached_pic"]
    if front:
        command += ["-metadata:s:v", "comment=Cover (front)"]
    for key, value in (metadata or {}).items():
        command += ["-metadata", f"{key}={value}"]
    subprocess.run([*command, str(out)], check=True, capture_output=True)
    out.replace(audio)


def add_id3(audio: Path, *, pictures: tuple[tuple[int, bytes], ...] = (),
            sylt: list[tuple[str, int]] | None = None, uslt: str | None = None) -> None:
    from mutagen.id3 import APIC, ID3, SYLT, USLT

    tags = ID3(audio)
    for index, (kind, data) in enumerate(pictures):
        tags.add(APIC(encoding=3, mime="image/png", type=kind, desc=f"p{index}", data=data))
    if sylt is not None:
        tags.add(SYLT(encoding=3, lang="eng", format=2, type=1, desc="", text=sylt))
    if uslt is not None:
        tags.add(USLT(encoding=3, lang="deu", desc="", text=uslt))
    tags.save(audio)


def add_flac_picture(audio: Path, kind: int, data: bytes) -> None:
    from mutagen.flac import FLAC, Picture

    flac = FLAC(audio)
    picture = Picture()
    picture.type, picture.mime, picture.data = kind, "image/png", data
    flac.add_picture(picture)
    flac.save()


def add_ogg_pictures(audio: Path, pictures: list[tuple[int, bytes]], lyrics: str | None = None) -> None:
    import mutagen
    from mutagen.flac import Picture

    ogg = mutagen.File(audio)
    blocks = []
    for kind, data in pictures:
        picture = Picture()
        picture.type, picture.mime, picture.data = kind, "image/png", data
        blocks.append(base64.b64encode(picture.write()).decode("ascii"))
    ogg["metadata_block_picture"] = blocks
    if lyrics is not None:
        ogg["unsyncedlyrics"] = [lyrics]
    ogg.save()
