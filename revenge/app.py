"""``create_app(settings)``: routes, middleware and the lifespan that owns every resource."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from revenge.config import Settings
from revenge.hls.engine import HlsEngine
from revenge.hls.sizes import SegmentSizes
from revenge.journal_watch import redis_server_watch
from revenge.library.album_stream import album_tracks
from revenge.library.art_cache import ArtCache
from revenge.library.art_index import ArtIndex
from revenge.library.catalog import Catalog
from revenge.library.scan_runner import ScanRunner
from revenge.library.scan_status import ScanStatus
from revenge.library.watch import LibraryWatcher
from revenge.metrics import Metrics
from revenge.playback.event_service import EventService
from revenge.playback.marks_store import open_mark_store, open_now_playing, open_playlist_store
from revenge.playback.progress_scrobbles import ProgressScrobbler
from revenge.playback.queue_service import QueueService
from revenge.playback.queue_store import open_queue_store
from revenge.playback.records import open_record_store
from revenge.playback.service import SessionService
from revenge.playback.sessions import Session
from revenge.podcasts.service import PodcastService
from revenge.progress.service import ProgressService
from revenge.scrobblers.service import ScrobblerService
from revenge.security.crypto import SecretBox
from revenge.security.shared import open_stream_secrets, open_user_store, secrets_key
from revenge.sqlite_thread import SqliteThread
from revenge.state import AppState
from revenge.subsonic.context import SubsonicState
from revenge.subsonic.routes import routes as subsonic_routes
from revenge.web import metrics as routes_metrics
from revenge.web import (
    routes_album_stream,
    routes_art,
    routes_bookmarks,
    routes_direct,
    routes_events,
    routes_health,
    routes_hls,
    routes_items,
    routes_library,
    routes_openapi,
    routes_podcasts,
    routes_progress,
    routes_queue,
    routes_scrobblers,
    routes_scrobbles,
    routes_static,
    routes_users,
)
from revenge.web.errors import EXCEPTION_HANDLERS
from revenge.web.fast_path import FastPath
from revenge.web.metrics import TimingMiddleware
from revenge.web.routes_playback import routes as playback_routes

log = logging.getLogger("revenge")


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        async with contextlib.AsyncExitStack() as stack:
            users = open_user_store(settings)  # users.db, or the shared store
            stack.callback(users.close)
            stream_secrets = open_stream_secrets(settings)
            stack.callback(stream_secrets.close)
            catalog = Catalog(settings.data_dir / "catalog.db", settings.artist_separators)
            stack.callback(catalog.close)
            metrics = Metrics()
            events = await EventService.open(
                settings, lambda item_id: item.duration_ms if (item := catalog.get_item(item_id)) else 0)
            stack.push_async_callback(events.close)  # after the services that publish to it
            # One watch of the shared server for every journaled store (trims, replays after a restart):
            # one look per interval, whatever the number of stores. Closed after them.
            watch = None
            if settings.store != "sqlite" and settings.progress_journal:
                watch = redis_server_watch(settings.store, settings.store_timeout_seconds)
                stack.push_async_callback(watch.close)
            records = open_record_store(settings, watch)
            await records.open()
            stack.push_async_callback(records.close)  # after progress.close: its drain may record plays
            queue_store = open_queue_store(settings, watch)
            await queue_store.open()
            stack.push_async_callback(queue_store.close)
            marks = open_mark_store(settings, watch)
            await marks.open()
            stack.push_async_callback(marks.close)
            playlists = open_playlist_store(settings, watch)
            await playlists.open()
            stack.push_async_callback(playlists.close)
            playing_now = open_now_playing(settings)  # Subsonic's: in process, or the shared store's
            await playing_now.open()
            stack.push_async_callback(playing_now.close)
            progress = await ProgressService.open(settings, metrics=metrics, plays=ProgressScrobbler(records),
                                              watch=watch)
            stack.push_async_callback(progress.close)
            hls = HlsEngine(settings, metrics=metrics, sizes=SegmentSizes(
                SqliteThread(settings.data_dir / "segment-sizes.db", "segment sizes")))
            stack.push_async_callback(hls.aclose)  # drops queued encodes, joins the encode threads
            scrobblers = await ScrobblerService.open(settings, records, catalog.get_item,
                                                     tags_of=catalog.track_tags)
            stack.push_async_callback(scrobblers.close)  # before records.close: a drain may be marking
            sessions = await SessionService.open(settings, progress, catalog.get_item,
                                                 lambda album_id: album_tracks(catalog, album_id))
            stack.push_async_callback(sessions.close)
            subsonic = SubsonicState(SecretBox(secrets_key(settings)), now_playing=playing_now)
            stack.push_async_callback(subsonic.drain)  # before playing_now.close
            # A session's start is "now playing" on the user's linked services and in getNowPlaying
            # (fire and forget).
            def now_playing(session: Session) -> None:  # an album session's is its track's
                playing = sessions.playing_item_id(session)
                if playing is None:
                    return
                scrobblers.now_playing(session.user_id, playing)
                user, item = users.by_id(session.user_id), catalog.get_item(playing)
                if user is not None and item is not None:
                    started = session.resume_ms if session.kind == "item" else 0
                    subsonic.session_playing(user.id, user.name, session.device_id, playing,
                                             max(item.duration_ms - started, 0) / 1000 or None)

            sessions.on_start(now_playing)
            sessions.on_track(now_playing)  # the next track of an album session
            # A session that ends (stopped, replaced, idle) takes its queued prefetches with it.
            sessions.on_end(lambda session, reason: hls.cancel_prefetch(session.item_id))
            metrics.sessions_active.set_function(sessions.watched_count)
            art = ArtIndex(settings.data_dir / "art.db")
            stack.callback(art.close)
            catalog.on_removed(art.forget)  # a removed item's picture rows go with it
            art_cache = ArtCache(settings.data_dir / "art-cache", settings.art_cache_mb * 1024 * 1024, art)
            scans = ScanRunner(settings, catalog, ScanStatus(), on_unit=art.index_unit)
            stack.push_async_callback(scans.aclose)
            podcasts = await PodcastService.open(settings, scans)
            stack.push_async_callback(podcasts.close)  # before scans.aclose: it may be starting a scan
            watcher = LibraryWatcher(settings, scans, metrics)
            stack.push_async_callback(watcher.aclose)  # before scans.aclose: its rescan finishes first
            queue = QueueService(queue_store)
            progress.on_applied(events.progress_applied)
            queue.on_change(lambda user_id, q: events.queue_changed(user_id, routes_queue.queue_json(q)))
            sessions.on_start(events.session_started)
            sessions.on_end(events.session_ended)
            state = AppState(settings=settings, users=users, catalog=catalog, scan=scans.status, scans=scans,
                             progress=progress, metrics=metrics, hls=hls, sessions=sessions,
                             stream_secrets=stream_secrets, records=records,
                             scrobblers=scrobblers, art=art, art_cache=art_cache,
                             queue=queue, events=events, podcasts=podcasts, marks=marks,
                             playlists=playlists,
                             subsonic=subsonic,
                             watch=watcher.status)
            if settings.scan_on_start:
                scans.start()
            watcher.start()
            yield {"revenge": state}

    # Starlette tries the routes in this order, so the paths players hit all the time come first:
    # progress writes, media segments, session heartbeats.
    routes = [
        *routes_progress.routes,
        *routes_hls.routes,
        *routes_album_stream.routes,
        *playback_routes,
        *routes_health.routes,
        *routes_metrics.routes,
        *routes_openapi.routes,  # the contract: GET /openapi.json
        *routes_items.routes,
        *routes_art.routes,  # cover art and lyrics
        *routes_library.routes,
        *routes_direct.routes,
        *routes_static.routes,  # the web player: "/" and "/static/…"
        *routes_scrobbles.routes,
        *routes_scrobblers.routes,
        *routes_bookmarks.routes,
        *routes_queue.routes,
        *routes_events.routes,
        *routes_users.routes,
        *routes_podcasts.routes,
        *subsonic_routes,  # /rest/…: the OpenSubsonic face
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TimingMiddleware),
                    Middleware(FastPath, routes=routes_progress.fast_routes)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
