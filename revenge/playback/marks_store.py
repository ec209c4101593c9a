"""The stores of stars and ratings (``marks.MarkStore``), playlists (``playlists.PlaylistStore``) and now
playing (``now_playing.NowPlayingStore``) that ``settings.store`` names, not yet opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from revenge.playback.marks import MarkStore
from revenge.playback.now_playing import NowPlaying, NowPlayingStore
from revenge.playback.playlists import PlaylistStore

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.journal_watch import ServerWatch


def open_mark_store(settings: Settings, watch: ServerWatch | None = None) -> MarkStore:
    if settings.store == "sqlite":
        from revenge.playback.marks_sqlite import SqliteMarkStore

        return SqliteMarkStore(settings.data_dir / "marks.db")
    from revenge.playback.marks_redis import RedisMarkStore

    store = RedisMarkStore(settings.store, settings.store_timeout_seconds)
    if not settings.progress_journal:
        return store
    from revenge.playback.journaled import JournaledMarkStore

    return JournaledMarkStore(store, settings.data_dir, settings.store_timeout_seconds, watch=watch)


def open_playlist_store(settings: Settings, watch: ServerWatch | None = None) -> PlaylistStore:
    if settings.store == "sqlite":
        from revenge.playback.playlists_sqlite import SqlitePlaylistStore

        return SqlitePlaylistStore(settings.data_dir / "playlists.db")
    from revenge.playback.playlists_redis import RedisPlaylistStore

    store = RedisPlaylistStore(settings.store, settings.store_timeout_seconds)
    if not settings.progress_journal:
        return store
    from revenge.playback.journaled import JournaledPlaylistStore

    return JournaledPlaylistStore(store, settings.data_dir, settings.store_timeout_seconds, watch=watch)


def open_now_playing(settings: Settings) -> NowPlayingStore:
    if settings.store == "sqlite":
        return NowPlaying()  # one process: its memory
    from revenge.playback.now_playing_redis import RedisNowPlaying

    return RedisNowPlaying(settings.store, settings.store_timeout_seconds)
