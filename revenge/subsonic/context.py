"""What the Subsonic face keeps between requests, owned by the app's lifespan (``AppState.subsonic``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from revenge.playback.now_playing import NowPlaying, NowPlayingStore
from revenge.security.app_passwords import new_decoy
from revenge.security.crypto import SecretBox
from revenge.security.login_limits import LoginLimiter


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
