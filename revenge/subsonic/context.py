"""What the Subsonic face keeps between requests, owned by the app's lifespan (``AppState.subsonic``)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from revenge.playback.now_playing import NowPlaying, NowPlayingStore
from revenge.security.app_passwords import new_decoy
from revenge.security.crypto import SecretBox
from revenge.security.login_limits import LoginLimiter

log = logging.getLogger("revenge.subsonic")
MAX_PENDING_REPORTS = 100  # now-playing writes in flight; past it a session start is not noted


@dataclass
class SubsonicState:
    box: SecretBox  # opens the app passwords of token logins
    # Failed logins: per user name, and (higher: a household or office shares one) per address.
    user_logins: LoginLimiter = field(default_factory=lambda: LoginLimiter(10, 60.0))
    address_logins: LoginLimiter = field(default_factory=lambda: LoginLimiter(50, 60.0))
    now_playing: NowPlayingStore = field(default_factory=NowPlaying)  # the app gives the store's
    decoy: str = ""  # a sealed password token logins open for unknown names (app_passwords.token_secret)

    def __post_init__(self) -> None:
        if not self.decoy:
            self.decoy = new_decoy(self.box)

    _reports: set[asyncio.Task[None]] = field(default_factory=set)

    def session_playing(self, user_id: str, user_name: str, player: str, item_id: str,
                        remaining_seconds: float | None) -> None:
        """Note in ``now_playing`` what a playback session (a ``stream``, the web player) started
        playing, without waiting: it is called from the sessions' start callbacks, which must not
        block. A write that fails is logged and forgotten (an entry is only a hint)."""
        if len(self._reports) >= MAX_PENDING_REPORTS:
            return
        task = asyncio.get_running_loop().create_task(self.now_playing.report(
            user_id, user_name, player, item_id, time.time(), remaining_seconds), name="now-playing")
        self._reports.add(task)
        task.add_done_callback(self._reported)

    def _reported(self, task: asyncio.Task[None]) -> None:
        self._reports.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("now playing not noted: %s", exc)

    async def drain(self) -> None:
        """Wait for the now-playing writes in flight (before the store closes)."""
        while self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)
