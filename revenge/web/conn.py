"""What every endpoint reads off its request, whether it holds a Starlette ``Request`` or, on the fast
path, the raw ASGI scope: both are mappings with ``state``, ``headers`` and ``path_params``, so one set
of helpers (here, in ``auth``, ``item_lookup`` and ``request_json``) serves both kinds of endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from revenge.state import AppState

Conn = Mapping[str, Any]  # a ``starlette.requests.Request`` or an ASGI ``Scope``


def app_state(conn: Conn) -> AppState:
    # The lifespan state dict straight from the scope: ``request.state`` would wrap it in a new
    # ``State`` object on every request.
    state: AppState = conn["state"]["revenge"]
    return state


def header_value(conn: Conn, name: bytes) -> str | None:
    """The first ``name`` (lower case) header of the request, decoded as Latin-1 like Starlette does."""
    for key, value in conn["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
