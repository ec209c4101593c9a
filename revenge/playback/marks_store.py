"""The store of stars and ratings ``settings.store`` names (``marks.MarkStore``), not yet opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from revenge.playback.marks import MarkStore

if TYPE_CHECKING:
    from revenge.config import Settings


def open_mark_store(settings: Settings) -> MarkStore:
    if settings.store == "sqlite":
        from revenge.playback.marks_sqlite import SqliteMarkStore

        return SqliteMarkStore(settings.data_dir / "marks.db")
    from revenge.playback.marks_redis import RedisMarkStore

    return RedisMarkStore(settings.store, settings.store_timeout_seconds)
