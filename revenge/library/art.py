"""Cover art: which picture stands for an item, its id, the sizes it is served at, and the resize.

Rules (pure): ``choose_picture`` (the front cover first), ``folder_image_rank`` / ``pick_folder_image``
(``cover.*``, ``folder.*``, ``front.*``, ``album.*``; jpg, jpeg, png, webp; any case), ``art_id_for``
(a hash of the picture's bytes, so the id changes exactly when the picture does), ``ART_SIZES`` and
``choose_format`` (WebP only for clients that say they take it); ``pictures_in`` takes the pictures
out of a file mutagen has parsed. I/O: ``embedded_pictures`` reads them from a file, and ``render``
resizes with Pillow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("revenge.art")

# The sizes (the longer side, in pixels) a picture is served at: a fixed set bounds the cache at
# len(ART_SIZES) × 2 formats per picture, and covers a list row (64) up to a full-screen player (1200).
ART_SIZES: tuple[int, ...] = (64, 128, 256, 512, 800, 1200)
DEFAULT_ART_SIZE = 512
_SIZE_BY_TEXT = {str(size): size for size in ART_SIZES}
ART_ID_RE = re.compile(r"[a-z2-7]{24}")  # 120 bits of BLAKE2b, base32: 24 characters, no padding

ArtFormat = Literal["jpeg", "webp"]
MEDIA_TYPES: dict[ArtFormat, str] = {"jpeg": "image/jpeg", "webp": "image/webp"}

FRONT_COVER = 3  # ID3 APIC / FLAC picture type "Cover (front)"
OTHER = 0
FOLDER_IMAGE_STEMS = ("cover", "folder", "front", "album")  # in order of preference
FOLDER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_PICTURE_BYTES = 32 * 1024 * 1024  # larger "pictures" are skipped: nobody's cover is 32 MB
MAX_DECODED_PIXELS = 50_000_000  # after JPEG draft scaling: bounds a resize's memory (≈ 200 MB RGBA)


class ArtError(Exception):
    """A picture that cannot be decoded (corrupt, truncated, not an image, a decompression bomb)."""


@dataclass(frozen=True, slots=True)
class Picture:
    type: int  # ID3/FLAC picture type; MP4 covers count as front covers
    data: bytes


def is_art_id(value: str) -> bool:
    return bool(ART_ID_RE.fullmatch(value))


def art_id_for(data: bytes) -> str:
    return base64.b32encode(hashlib.blake2b(data, digest_size=15).digest()).decode("ascii").lower()


def parse_art_size(raw: str | None) -> int | None:
    """The size a ``?size=`` asks for (``DEFAULT_ART_SIZE`` when absent); None when not one of ours."""
    if raw is None or raw == "":
        return DEFAULT_ART_SIZE
    return _SIZE_BY_TEXT.get(raw)  # the canonical spelling only ("0064" is not a second cache key)


def _picture_rank(picture: Picture) -> int:
    if picture.type == FRONT_COVER:
        return 0
    return 1 if picture.type == OTHER else 2


def choose_picture(pictures: Sequence[Picture]) -> Picture | None:
    """The front cover; else an "other" picture; else the first of any type (in tag order)."""
    usable = [p for p in pictures if p.data and len(p.data) <= MAX_PICTURE_BYTES]
    return min(usable, key=_picture_rank) if usable else None  # min is stable: first of a rank wins


def folder_image_rank(name: str) -> int | None:
    """The preference of a folder image by its file name (lower is better), None for other files."""
    if name.startswith("."):
        return None
    stem, dot, suffix = name.rpartition(".")
    suffix = (dot + suffix).lower()
    stem = stem.lower()
    if stem not in FOLDER_IMAGE_STEMS or suffix not in FOLDER_IMAGE_SUFFIXES:
        return None
    return FOLDER_IMAGE_STEMS.index(stem) * len(FOLDER_IMAGE_SUFFIXES) + FOLDER_IMAGE_SUFFIXES.index(suffix)


def pick_folder_image(names: Iterable[str]) -> str | None:
    """The best folder image among a folder's file names; ties (``Cover.jpg`` and ``cover.JPG``) go to
    the smaller name, so the choice does not depend on listing order."""
    ranked = [(rank, name) for name in names if (rank := folder_image_rank(name)) is not None]
    return min(ranked)[1] if ranked else None


def choose_format(accept: str | None) -> ArtFormat:
    """WebP when the ``Accept`` header lists ``image/webp`` with a non-zero quality, else JPEG (which
    every client decodes; ``*/*`` alone does not prove a client knows WebP)."""
    if not accept:
        return "jpeg"
    for part in accept.split(","):
        media, _, params = part.partition(";")
        if media.strip().lower() != "image/webp":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return "webp"
    return "jpeg"


# ------------------------------------------------------------------------------------------------
# I/O: pictures in tags, and the resize


def embedded_pictures(path: Path | str) -> list[Picture]:
    """The pictures in an audio file's tags (see ``pictures_in``). A file mutagen cannot read has none:
    art never fails a scan."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except Exception as exc:  # mutagen raises many types for broken tags; a bug must not fail the scan
        log.debug("no tags read from %s: %s", path, exc)
        return []
    return pictures_in(audio, path)


def pictures_in(audio: object, path: Path | str = "") -> list[Picture]:
    """The pictures of a file mutagen has parsed (ID3 APIC, FLAC pictures, MP4 covr, Vorbis/Opus
    METADATA_BLOCK_PICTURE), in tag order. ``audio`` is a ``mutagen.FileType``, or an ``ID3`` read on
    its own (the scan's tag reading), or None."""
    from mutagen.flac import Picture as FlacPicture

    if audio is None:
        return []
    pictures: list[Picture] = [Picture(p.type, p.data) for p in getattr(audio, "pictures", None) or ()]
    tags = getattr(audio, "tags", audio if hasattr(audio, "getall") else None)
    if tags is None:
        return pictures
    try:
        if hasattr(tags, "getall"):  # ID3 (MP3, and the ID3 chunk of WAV/AIFF)
            pictures.extend(Picture(int(f.type), f.data) for f in tags.getall("APIC"))
        elif type(tags).__name__ == "MP4Tags":
            pictures.extend(Picture(FRONT_COVER, bytes(c)) for c in tags.get("covr", ()))
        else:  # Vorbis comments (Ogg Vorbis, Opus, FLAC's own are in ``pictures`` above)
            for value in tags.get("metadata_block_picture", ()) or ():
                try:
                    block = FlacPicture(base64.b64decode(value))
                except Exception:  # not base64, or not a picture block: skip that one
                    continue
                pictures.append(Picture(block.type, block.data))
    except Exception as exc:
        log.debug("pictures of %s unreadable: %s", path, exc)
    return pictures


def chosen_art_id(pictures: Sequence[Picture]) -> str | None:
    """The art id of the picture ``choose_picture`` takes from ``pictures``; None: none."""
    picture = choose_picture(pictures)
    return art_id_for(picture.data) if picture is not None else None


def embedded_art_id(audio: object) -> str | None:
    """``chosen_art_id`` of a parsed file's pictures (``pictures_in``)."""
    return chosen_art_id(pictures_in(audio))


def render(data: bytes, size: int, fmt: ArtFormat) -> bytes:
    """``data`` (any format Pillow reads) fitted into ``size`` × ``size`` (never enlarged), encoded as
    ``fmt``. Raises ``ArtError`` for anything that does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            # JPEG: decode at 1/2, 1/4 or 1/8 scale straight from the DCT, the larger part of the speed.
            opened.draft("RGB", (size, size))
            if opened.size[0] * opened.size[1] > MAX_DECODED_PIXELS:
                raise ArtError(f"{opened.size[0]} × {opened.size[1]} pixels is too large a picture")
            image = opened.convert("RGBA") if _has_alpha(opened) else opened.convert("RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if fmt == "jpeg" and image.mode == "RGBA":
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        out = io.BytesIO()
        if fmt == "webp":
            image.save(out, "WEBP", quality=80, method=4)
        else:
            image.save(out, "JPEG", quality=85)
        return out.getvalue()
    except ArtError:
        raise
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, …
        raise ArtError(f"{type(exc).__name__}: {exc}") from None


def _has_alpha(image: object) -> bool:
    mode = getattr(image, "mode", "")
    info = getattr(image, "info", {})
    return mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in info)
