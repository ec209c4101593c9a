"""Every ``/rest/`` endpoint, by name: the one list ``app.py`` mounts."""

from __future__ import annotations

from starlette.routing import Route

from revenge.subsonic import browse, marks, media, playing, playlists, system
from revenge.subsonic.protocol import Handler, make_routes

# Every answer carries the caller's stars and ratings on its songs, albums and artists (marks.with_marks).
HANDLERS: dict[str, Handler] = {name: marks.with_marks(handler) for name, handler in {
    **system.HANDLERS, **browse.HANDLERS, **media.HANDLERS, **playing.HANDLERS, **marks.HANDLERS,
    **playlists.HANDLERS}.items()}

routes: list[Route] = make_routes(HANDLERS)
