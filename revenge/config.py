"""Settings: defaults ← optional TOML file ← ``REVENGE_*`` environment variables.

Every setting is one field of :class:`Settings`. The TOML file uses the field names as keys; the
environment uses ``REVENGE_`` plus the upper-cased field name. Unknown keys and bad values raise
:class:`ConfigError` naming the key, so a typo fails at startup instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ENV_PREFIX = "REVENGE_"
HLS_PROFILE_NAMES = ("aac-64", "aac-128", "aac-192", "aac-256", "aac-320", "opus-128", "flac")
AAC_CODERS = ("twoloop", "fast", "anmr")


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; ``key`` names it as the user wrote it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "revenge"


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    # Library
    library: tuple[Path, ...] = ()
    podcasts: tuple[Path, ...] = ()
    audiobooks: tuple[Path, ...] = ()
    scan_on_start: bool = True
    watch: bool = True  # apply changes to the folders within seconds (library/watch)
    scan_interval_seconds: float = 3600.0  # also scan incrementally this often; 0: never
    scan_workers: int = -1  # processes probing files for a scan; -1: one fewer than the CPUs; 0: none
    # Split artist and album artist tags at these (e.g. [";", " / "]); none: as tagged (AC/DC is one)
    artist_separators: tuple[str, ...] = ()
    # Server
    data_dir: Path = field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = 7700
    log_level: str = "info"
    # HTTP limits on what one client may make the server hold (revenge/http_guard.py)
    http_max_header_bytes: int = 65_536  # request line and headers together; more is 431
    http_max_headers: int = 100
    http_first_request_timeout_seconds: float = 10.0  # connected but silent
    http_header_timeout_seconds: float = 10.0  # from a request's first byte to the end of its headers
    http_body_timeout_seconds: float = 10.0  # each window of a body must bring ...
    http_body_min_bytes_per_second: int = 1024  # ... this rate (and at least one byte), else 408
    http_max_connections: int = 16_384  # also kept under the open-file limit
    # Progress store: "sqlite" (embedded) or a redis:// / rediss:// / unix:// URL (Dragonfly, Redis)
    store: str = "sqlite"
    progress_batch_max: int = 128  # smaller batches overlap store work with answering (bench grid)
    progress_batch_window_ms: float = 2.0
    progress_queue_max: int = 10_000
    # Dragonfly/Redis store: a command that gets no answer within this long is an outage (503)
    store_timeout_seconds: float = 2.0
    # "required": refuse a Redis/Dragonfly on which acknowledged writes would not survive a restart;
    # "accept_loss": run on it anyway (revenge.progress.durability)
    store_durability: Literal["required", "accept_loss"] = "required"
    # Dragonfly/Redis store: journal the acknowledged writes of progress, marks, playlists, queues and
    # records in data_dir (revenge.journal)
    progress_journal: bool = True
    # HLS engine
    cache_mb: int = 256
    # Cover art: the disk budget of resized pictures under data_dir/art-cache (LRU by access)
    art_cache_mb: int = 200
    segment_seconds: float = 6.0
    hls_ladder: tuple[str, ...] = ("aac-64", "aac-128", "aac-256")
    encode_workers: int = field(default_factory=_default_workers)
    encode_queue_max: int = 64  # ≈ 6 s of twoloop encodes on 2 cores: players wait rather than fail
    prefetch_segments: int = 2
    aac_coder: str = "twoloop"
    encoder_run_segments: int = 3  # segments one encoder runs over (1 = each segment its own encoder)
    encoder_idle_seconds: float = 30.0  # a suspended encoder run nobody continued this long is closed
    # Playback sessions and signed stream URLs
    session_idle_seconds: float = 60.0
    sessions_per_user: int = 4
    token_ttl_seconds: int = 86_400
    events_backlog: int = 1000
    events_backlog_seconds: float = 600.0
    events_client_buffer: int = 256
    events_heartbeat_seconds: float = 15.0
    events_progress_window_ms: int = 1000
    events_token_ttl_seconds: int = 60
    devices_recent_seconds: int = 86_400
    # Scrobbling (ListenBrainz-compatible services, Last.fm): where to, and the admin's Last.fm API account
    listenbrainz_url: str = "https://api.listenbrainz.org"
    lastfm_api_url: str = "https://ws.audioscrobbler.com/2.0/"
    lastfm_auth_url: str = "https://www.last.fm/api/auth"
    lastfm_api_key: str = ""
    lastfm_api_secret: str = field(default="", repr=False)  # never logged, never answered
    scrobble_interval_seconds: float = 30.0  # how often the forwarder looks at the outboxes
    scrobble_timeout_seconds: float = 10.0  # each call to a service
    scrobble_retry_seconds: float = 30.0  # the first backoff after a failure (then doubling, to 1 h)
    listenbrainz_batch: int = 100
    lastfm_batch: int = 50
    # Podcast subscriptions (revenge/podcasts): checks, downloads, and the outbound guard
    podcast_check_interval_seconds: float = 3600.0  # a new subscription's check interval (PATCH per feed)
    podcast_download_concurrency: int = 2
    podcast_max_failures: int = 10  # failed checks in a row that turn a feed's auto-download off
    podcast_allow_private_addresses: bool = False  # the SSRF guard: feeds on loopback/LAN refused unless true
    podcast_max_redirects: int = 5
    podcast_max_feed_bytes: int = 16 * 1024 * 1024
    podcast_max_episode_bytes: int = 2 * 1024 * 1024 * 1024
    podcast_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        _validate(self)


def _as_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {value!r}")
    return value


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(key, f"expected an integer, got {value!r}")


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(key, f"expected a number, got {value!r}")


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ConfigError(key, f"expected true or false, got {value!r}")


def _as_path(key: str, value: Any) -> Path:
    text = _as_str(key, value).strip()
    if not text:
        raise ConfigError(key, "expected a path, got an empty string")
    return Path(text).expanduser()


def _as_list(key: str, value: Any) -> list[str]:
    # Environment lists are separated by commas or the OS path separator; TOML uses arrays.
    if isinstance(value, str):
        parts = [p.strip() for chunk in value.split(",") for p in chunk.split(os.pathsep)]
        return [p for p in parts if p]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(key, f"expected a list of strings, got {value!r}")


def _as_paths(key: str, value: Any) -> tuple[Path, ...]:
    return tuple(_as_path(key, v) for v in _as_list(key, value))


def _as_strs(key: str, value: Any) -> tuple[str, ...]:
    return tuple(_as_list(key, value))


_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "library": _as_paths,
    "podcasts": _as_paths,
    "audiobooks": _as_paths,
    "scan_on_start": _as_bool,
    "watch": _as_bool,
    "scan_interval_seconds": _as_float,
    "scan_workers": _as_int,
    "artist_separators": _as_strs,
    "data_dir": _as_path,
    "host": _as_str,
    "port": _as_int,
    "log_level": _as_str,
    "http_max_header_bytes": _as_int,
    "http_max_headers": _as_int,
    "http_first_request_timeout_seconds": _as_float,
    "http_header_timeout_seconds": _as_float,
    "http_body_timeout_seconds": _as_float,
    "http_body_min_bytes_per_second": _as_int,
    "http_max_connections": _as_int,
    "store": _as_str,
    "progress_batch_max": _as_int,
    "progress_batch_window_ms": _as_float,
    "progress_queue_max": _as_int,
    "store_timeout_seconds": _as_float,
    "store_durability": _as_str,
    "progress_journal": _as_bool,
    "cache_mb": _as_int,
    "art_cache_mb": _as_int,
    "segment_seconds": _as_float,
    "hls_ladder": _as_strs,
    "encode_workers": _as_int,
    "encode_queue_max": _as_int,
    "prefetch_segments": _as_int,
    "aac_coder": _as_str,
    "encoder_run_segments": _as_int,
    "encoder_idle_seconds": _as_float,
    "session_idle_seconds": _as_float,
    "sessions_per_user": _as_int,
    "token_ttl_seconds": _as_int,
    "events_backlog": _as_int,
    "events_backlog_seconds": _as_float,
    "events_client_buffer": _as_int,
    "events_heartbeat_seconds": _as_float,
    "events_progress_window_ms": _as_int,
    "events_token_ttl_seconds": _as_int,
    "devices_recent_seconds": _as_int,
    "listenbrainz_url": _as_str,
    "lastfm_api_url": _as_str,
    "lastfm_auth_url": _as_str,
    "lastfm_api_key": _as_str,
    "lastfm_api_secret": _as_str,
    "scrobble_interval_seconds": _as_float,
    "scrobble_timeout_seconds": _as_float,
    "scrobble_retry_seconds": _as_float,
    "listenbrainz_batch": _as_int,
    "lastfm_batch": _as_int,
    "podcast_check_interval_seconds": _as_float,
    "podcast_download_concurrency": _as_int,
    "podcast_max_failures": _as_int,
    "podcast_allow_private_addresses": _as_bool,
    "podcast_max_redirects": _as_int,
    "podcast_max_feed_bytes": _as_int,
    "podcast_max_episode_bytes": _as_int,
    "podcast_timeout_seconds": _as_float,
}


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _validate(s: Settings) -> None:
    _check(len(s.artist_separators) <= 8 and all(1 <= len(sep) <= 8 for sep in s.artist_separators),
           "artist_separators", "must be at most 8 separators of 1..8 characters")
    _check(s.scan_interval_seconds == 0 or 1 <= s.scan_interval_seconds <= 604_800, "scan_interval_seconds",
           "must be 0 (off) or 1..604800 seconds")
    _check(-1 <= s.scan_workers <= 64, "scan_workers",
           "must be -1 (one fewer than the CPUs), 0 (probe in the scanning thread) or 1..64 processes")
    _check(0 <= s.port <= 65535, "port", f"must be 0..65535, got {s.port}")
    _check(s.log_level in ("critical", "error", "warning", "info", "debug", "trace"), "log_level",
           f"must be one of critical, error, warning, info, debug, trace; got {s.log_level!r}")
    _check(1024 <= s.http_max_header_bytes <= 1_048_576, "http_max_header_bytes", "must be 1024..1048576")
    _check(8 <= s.http_max_headers <= 10_000, "http_max_headers", "must be 8..10000")
    for key in ("http_first_request_timeout_seconds", "http_header_timeout_seconds",
                "http_body_timeout_seconds"):
        _check(0.05 <= getattr(s, key) <= 3600, key, "must be 0.05..3600 seconds")
    _check(0 <= s.http_body_min_bytes_per_second <= 1_000_000_000, "http_body_min_bytes_per_second",
           "must be 0..1000000000")
    _check(1 <= s.http_max_connections <= 10_000_000, "http_max_connections", "must be 1..10000000")
    _check(s.store == "sqlite" or s.store.startswith(("redis://", "rediss://", "unix://")), "store",
           f"must be 'sqlite' or a redis://, rediss:// or unix:// URL, got {s.store!r}")
    _check(1 <= s.progress_batch_max <= 10_000, "progress_batch_max", "must be 1..10000")
    _check(0 <= s.progress_batch_window_ms <= 1000, "progress_batch_window_ms", "must be 0..1000 ms")
    _check(s.progress_queue_max >= s.progress_batch_max, "progress_queue_max",
           "must be at least progress_batch_max")
    _check(0.05 <= s.store_timeout_seconds <= 60, "store_timeout_seconds", "must be 0.05..60 seconds")
    _check(s.store_durability in ("required", "accept_loss"), "store_durability",
           f"must be 'required' or 'accept_loss', got {s.store_durability!r}")
    _check(1 <= s.cache_mb <= 1_048_576, "cache_mb", f"must be 1..1048576, got {s.cache_mb}")
    _check(1 <= s.art_cache_mb <= 1_048_576, "art_cache_mb", f"must be 1..1048576, got {s.art_cache_mb}")
    _check(1.0 <= s.segment_seconds <= 30.0, "segment_seconds", "must be 1..30 seconds")
    _check(len(s.hls_ladder) > 0, "hls_ladder", "must name at least one profile")
    for name in s.hls_ladder:
        _check(name in HLS_PROFILE_NAMES, "hls_ladder",
               f"unknown profile {name!r}; known: {', '.join(HLS_PROFILE_NAMES)}")
    _check(1 <= s.encode_workers <= 256, "encode_workers", "must be 1..256")
    _check(1 <= s.encode_queue_max <= 10_000, "encode_queue_max", "must be 1..10000")
    _check(0 <= s.prefetch_segments <= 16, "prefetch_segments", "must be 0..16")
    _check(s.aac_coder in AAC_CODERS, "aac_coder", f"must be one of {', '.join(AAC_CODERS)}")
    _check(1 <= s.encoder_run_segments <= 16, "encoder_run_segments", "must be 1..16")
    _check(0.01 <= s.encoder_idle_seconds <= 3600, "encoder_idle_seconds", "must be 0.01..3600 seconds")
    _check(s.session_idle_seconds > 0, "session_idle_seconds", "must be positive")
    _check(1 <= s.sessions_per_user <= 1000, "sessions_per_user", "must be 1..1000")
    _check(60 <= s.token_ttl_seconds <= 31 * 86_400, "token_ttl_seconds", "must be 60..2678400 seconds")
    _check(1 <= s.events_backlog <= 100_000, "events_backlog", "must be 1..100000")
    _check(1 <= s.events_backlog_seconds <= 86_400, "events_backlog_seconds", "must be 1..86400")
    _check(8 <= s.events_client_buffer <= 100_000, "events_client_buffer", "must be 8..100000")
    _check(0.05 <= s.events_heartbeat_seconds <= 300, "events_heartbeat_seconds", "must be 0.05..300")
    _check(0 <= s.events_progress_window_ms <= 60_000, "events_progress_window_ms", "must be 0..60000")
    _check(1 <= s.events_token_ttl_seconds <= 3600, "events_token_ttl_seconds", "must be 1..3600")
    _check(60 <= s.devices_recent_seconds <= 31 * 86_400, "devices_recent_seconds", "must be 60..2678400")
    for key in ("listenbrainz_url", "lastfm_api_url", "lastfm_auth_url"):
        url = getattr(s, key)
        _check(url.startswith(("http://", "https://")) and len(url) > len("https://") and url == url.strip(),
               key, f"must be an http:// or https:// URL, got {url!r}")
    _check(bool(s.lastfm_api_key) == bool(s.lastfm_api_secret), "lastfm_api_secret",
           "lastfm_api_key and lastfm_api_secret go together: set both or neither")
    _check(0.05 <= s.scrobble_interval_seconds <= 86_400, "scrobble_interval_seconds", "must be 0.05..86400")
    _check(0.1 <= s.scrobble_timeout_seconds <= 120, "scrobble_timeout_seconds", "must be 0.1..120 seconds")
    _check(0.01 <= s.scrobble_retry_seconds <= 3600, "scrobble_retry_seconds", "must be 0.01..3600 seconds")
    _check(1 <= s.listenbrainz_batch <= 1000, "listenbrainz_batch", "must be 1..1000")
    _check(1 <= s.lastfm_batch <= 50, "lastfm_batch", "must be 1..50")
    _check(1 <= s.podcast_check_interval_seconds <= 604_800, "podcast_check_interval_seconds",
           "must be 1..604800 seconds")
    _check(1 <= s.podcast_download_concurrency <= 16, "podcast_download_concurrency", "must be 1..16")
    _check(1 <= s.podcast_max_failures <= 1000, "podcast_max_failures", "must be 1..1000")
    _check(0 <= s.podcast_max_redirects <= 20, "podcast_max_redirects", "must be 0..20")
    _check(1024 <= s.podcast_max_feed_bytes <= 256 * 1024 * 1024, "podcast_max_feed_bytes",
           "must be 1 KiB..256 MiB")
    _check(1024 <= s.podcast_max_episode_bytes <= 64 * 1024**3, "podcast_max_episode_bytes",
           "must be 1 KiB..64 GiB")
    _check(0.1 <= s.podcast_timeout_seconds <= 600, "podcast_timeout_seconds", "must be 0.1..600 seconds")


def _apply(values: dict[str, Any], source: Mapping[str, Any], key_of: Callable[[str], str]) -> None:
    for name, raw in source.items():
        convert = _CONVERTERS.get(name)
        if convert is None:
            raise ConfigError(key_of(name), "unknown setting")
        values[name] = convert(key_of(name), raw)


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, then ``config_file`` (TOML), then ``env``, then ``overrides``.

    ``overrides`` are already-typed values (from the command line) and win over everything.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{config_file} is not valid TOML: {exc}") from exc
        _apply(values, data, lambda name: name)
    environ = os.environ if env is None else env
    from_env = {k[len(ENV_PREFIX):].lower(): v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    _apply(values, from_env, lambda name: ENV_PREFIX + name.upper())
    for name, value in overrides.items():
        if name not in _CONVERTERS:
            raise ConfigError(name, "unknown setting")
        if value is not None:
            values[name] = value
    try:
        return Settings(**values)
    except ConfigError as exc:
        # Name the key the way the user most likely wrote it: the env var if that is where it came from.
        if exc.key in from_env and config_file is None:
            raise ConfigError(ENV_PREFIX + exc.key.upper(), str(exc).split(": ", 1)[1]) from None
        raise


def settings_table() -> list[tuple[str, str, str]]:
    """(toml key, env var, default) for every setting: the README table is checked against this."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        rows.append((f.name, ENV_PREFIX + f.name.upper(), repr(default)))
    return rows
