"""Which files are audio, and the Content-Type each is served with. Pure data."""

from __future__ import annotations

# Extension → Content-Type for direct play (RFC 3003, 4337, 5334, 7845, 9639; vendor types otherwise).
MEDIA_TYPES: dict[str, str] = {
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".m4b": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".wv": "audio/x-wavpack",
    ".ape": "audio/x-ape",
    ".wma": "audio/x-ms-wma",
    ".mka": "audio/x-matroska",
    ".webm": "audio/webm",
    ".caf": "audio/x-caf",
    ".tta": "audio/x-tta",
    ".mpc": "audio/x-musepack",
}

AUDIO_EXTENSIONS = frozenset(MEDIA_TYPES)

# Files whose extension does not say enough: fall back on the demuxer FFmpeg picked.
_BY_CONTAINER: dict[str, str] = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "mov": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "aiff": "audio/aiff",
    "matroska": "audio/x-matroska",
}


def is_audio_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in AUDIO_EXTENSIONS


def media_type_for(path: str, container: str) -> str:
    dot = path.rfind(".")
    if dot >= 0 and path.rfind("/") < dot:
        found = MEDIA_TYPES.get(path[dot:].lower())
        if found:
            return found
    return _BY_CONTAINER.get(container.split(",")[0], "application/octet-stream")
