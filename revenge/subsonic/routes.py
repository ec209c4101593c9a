"""Every ``/rest/`` endpoint, by name: the one list ``app.py`` mounts."""

from __future__ import annotations

from starlette.routing import Route

from revenge.subsonic import browse, marks, media, playing, playlists, system
from revenge.subsonic.protocol import Handler, make_routes

HANDLERS: dict[str, Handler] = {**system.HANDLERS, **browse.HANDLERS, **media.HANDLERS, **playing.HANDLERS,
                                **marks.HANDLERS, **playlists.HANDLERS}

routes: list[Route] = make_routes(HANDLERS)
