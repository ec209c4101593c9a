"""``ScrobblerService``: what the routes and the session hook call (link, unlink, status, now playing),
owning the link store, the HTTP client (timeouts on every call; base URLs only from settings), the
secret box and the forwarder. Created and closed by ``create_app``'s lifespan; ``AppState.scrobblers``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from revenge.playback.records import RecordStore
from revenge.playback.scrobbles import SERVICES, ServiceName
from revenge.scrobblers.forwarder import Forwarder
from revenge.scrobblers.lastfm import LastfmClient, auth_url
from revenge.scrobblers.links import LinkStore, open_link_store
from revenge.scrobblers.listenbrainz import ListenBrainzClient
from revenge.scrobblers.model import Link, link_json, secret_context
from revenge.security.crypto import SecretBox
from revenge.security.shared import secrets_key

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.library.model import Item
    from revenge.library.tags import Tags


class NotConfigured(Exception):
    """Last.fm needs the admin's API key and secret (``lastfm_api_key``, ``lastfm_api_secret``)."""


class ScrobblerService:
    def __init__(self, settings: Settings, records: RecordStore, item_of: Callable[[str], Item | None], *,
                 tags_of: Callable[[str], Tags | None] = lambda item_id: None,
                 links: LinkStore | None = None, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self._settings = settings
        self._clock = clock
        self._records = records
        self.links = links if links is not None else open_link_store(settings)
        timeout = settings.scrobble_timeout_seconds
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                       headers={"User-Agent": "revenge-audio"})
        self._box = SecretBox(secrets_key(settings))  # the data dir's, or the shared store's
        self.listenbrainz = ListenBrainzClient(self._http, settings.listenbrainz_url)
        self.lastfm = LastfmClient(self._http, settings.lastfm_api_url, settings.lastfm_api_key,
                                   settings.lastfm_api_secret)
        self.forwarder = Forwarder(
            records, self.links, self._box, {"listenbrainz": self.listenbrainz, "lastfm": self.lastfm},
            item_of, tags_of=tags_of,
            batch={"listenbrainz": settings.listenbrainz_batch, "lastfm": settings.lastfm_batch},
            interval_seconds=settings.scrobble_interval_seconds,
            retry_base_seconds=settings.scrobble_retry_seconds,
            # A drain stops at half the lease: room for a batch whose calls all run to the timeout.
            lease_ms=int(max(60.0, 8 * timeout) * 1000), clock=clock, rand=rand)

    @classmethod
    async def open(cls, settings: Settings, records: RecordStore, item_of: Callable[[str], Item | None],
                   *, start: bool = True, **options: Any) -> ScrobblerService:
        """Open the link store and (unless ``start`` is false: tests drive the passes) start the
        forwarder; ``options`` go to the constructor."""
        service = cls(settings, records, item_of, **options)
        try:
            await service.links.open()
        except BaseException:
            await service._http.aclose()
            raise
        if start:
            service.forwarder.start()
        return service

    async def close(self) -> None:
        await self.forwarder.close()
        await self._http.aclose()
        await self.links.close()

    def configured(self, service: ServiceName) -> bool:
        return service == "listenbrainz" or bool(self._settings.lastfm_api_key)

    def now_playing(self, user_id: str, item_id: str) -> None:
        self.forwarder.now_playing(user_id, item_id)

    async def status(self, user_id: str, service: ServiceName) -> dict[str, Any]:
        link = await self.links.get(user_id, service)
        outbox = await self._records.outbox_size(user_id, service)
        return link_json(service, link, outbox, self.configured(service))

    async def statuses(self, user_id: str) -> list[dict[str, Any]]:
        return [await self.status(user_id, service) for service in SERVICES]

    async def _store(self, user_id: str, service: ServiceName, account: str, secret: str) -> None:
        old = await self.links.get(user_id, service)
        now = int(self._clock() * 1000)
        linked_at = now if old is None else max(now, old.linked_at + 1)  # reports about the old link miss
        sealed = self._box.seal(secret, secret_context(user_id, service))
        await self.links.put(Link(user_id, service, account, sealed, linked_at))
        self.forwarder.wake(user_id, service)

    async def link_listenbrainz(self, user_id: str, token: str) -> None:
        """Check the token with the service, then keep it (sealed). Raises ``InvalidCredentials`` or
        ``ServiceUnavailable``."""
        account = await self.listenbrainz.validate(token)
        await self._store(user_id, "listenbrainz", account, token)

    async def lastfm_authorize(self, callback: str | None) -> tuple[str, str]:
        """A fresh web-auth token and the URL to send the user to, to authorise it."""
        if not self.configured("lastfm"):
            raise NotConfigured()
        token = await self.lastfm.get_token()
        return auth_url(self._settings.lastfm_auth_url, self._settings.lastfm_api_key, token, callback), token

    async def link_lastfm(self, user_id: str, token: str) -> None:
        """Exchange an authorised web-auth token for the session key, and keep that (sealed)."""
        if not self.configured("lastfm"):
            raise NotConfigured()
        account, session_key = await self.lastfm.get_session(token)
        await self._store(user_id, "lastfm", account, session_key)

    async def unlink(self, user_id: str, service: ServiceName) -> bool:
        return await self.links.delete(user_id, service)
