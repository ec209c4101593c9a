"""Everything a request may need, built by ``create_app``'s lifespan and torn down with it.

Reached from endpoints as ``scope["state"]["revenge"]`` (Starlette's lifespan state, see
``revenge.web.auth.app_state``), never as a global.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.hls.engine import HlsEngine
    from revenge.library.art_cache import ArtCache
    from revenge.library.art_index import ArtIndex
    from revenge.library.catalog import Catalog
    from revenge.library.scan_runner import ScanRunner
    from revenge.library.scan_status import ScanStatus
    from revenge.library.watch import WatchStatus
    from revenge.metrics import Metrics
    from revenge.playback.event_service import EventService
    from revenge.playback.marks import MarkStore
    from revenge.playback.playlists import PlaylistStore
    from revenge.playback.queue_service import QueueService
    from revenge.playback.records import RecordStore
    from revenge.playback.service import SessionService
    from revenge.podcasts.service import PodcastService
    from revenge.progress.service import ProgressService
    from revenge.scrobblers.service import ScrobblerService
    from revenge.security.keys import UserDirectory
    from revenge.security.secrets import StreamSecrets
    from revenge.subsonic.context import SubsonicState


@dataclass
class AppState:
    settings: Settings
    users: UserDirectory  # users.db, or the shared store (security.shared)
    catalog: Catalog
    scan: ScanStatus
    scans: ScanRunner  # starts scans (at start, and an admin's POST /api/v1/library/scan)
    progress: ProgressService
    metrics: Metrics
    hls: HlsEngine
    sessions: SessionService
    stream_secrets: StreamSecrets  # current(): the first signs stream tokens, all verify (rotation)
    records: RecordStore  # scrobbles (with their outboxes), listening stats, bookmarks
    scrobblers: ScrobblerService  # linked ListenBrainz / Last.fm accounts and the forwarder
    art: ArtIndex  # item → cover art id, art id → where its picture is
    art_cache: ArtCache  # resized pictures on disk
    queue: QueueService  # the play queue of each user, shared by the user's devices
    podcasts: PodcastService  # feed subscriptions and episode downloads (podcasts.db)
    events: EventService  # live events to the user's devices, the device list, remote control
    marks: MarkStore  # stars and ratings of songs, albums, artists
    playlists: PlaylistStore  # each user's playlists
    subsonic: SubsonicState  # the /rest/ face's login limits, app-password box, now playing
    watch: WatchStatus | None = None  # the library watcher (None: an app built without one)
