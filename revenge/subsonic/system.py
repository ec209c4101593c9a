"""``ping``, ``getLicense``, ``getOpenSubsonicExtensions``, ``getUser``, ``getMusicFolders``,
``getScanStatus``, ``startScan``."""

from __future__ import annotations

from typing import Any

from revenge.subsonic.envelope import NOT_AUTHORIZED, SubsonicError
from revenge.subsonic.mapping import MUSIC_FOLDER_ID, iso
from revenge.subsonic.protocol import Call, Handler

EXTENSIONS = [{"name": "formPost", "versions": [1]}, {"name": "apiKeyAuthentication", "versions": [1]},
              {"name": "songLyrics", "versions": [1]}]


async def ping(call: Call) -> dict[str, Any]:
    return {}


async def get_license(call: Call) -> dict[str, Any]:
    return {"license": {"valid": True}}


async def get_extensions(call: Call) -> dict[str, Any]:
    return {"openSubsonicExtensions": EXTENSIONS}


async def get_user(call: Call) -> dict[str, Any]:
    name = call.get("username") or call.user.name
    if name != call.user.name and not call.user.is_admin:
        raise SubsonicError(NOT_AUTHORIZED, "Only admins may see other users")
    if name != call.user.name:
        found = next((u for u, _ in call.state.users.list_users() if u.name == name), None)
        if found is None:
            raise SubsonicError(70, "User not found")
        user = found
    else:
        user = call.user
    admin = user.is_admin
    return {"user": {"username": user.name, "scrobblingEnabled": True, "adminRole": admin,
                     "settingsRole": False, "downloadRole": True, "uploadRole": False, "playlistRole": True,
                     "coverArtRole": admin, "commentRole": False, "podcastRole": False, "streamRole": True,
                     "jukeboxRole": False, "shareRole": False, "videoConversionRole": False,
                     "folder": [MUSIC_FOLDER_ID]}}


async def get_music_folders(call: Call) -> dict[str, Any]:
    return {"musicFolders": {"musicFolder": [{"id": MUSIC_FOLDER_ID, "name": "Music"}]}}


def _scan_status(call: Call) -> dict[str, Any]:
    status = call.state.scan.as_dict()
    finished = status.get("finished_at")
    return {"scanStatus": {"scanning": bool(status["running"]),
                           "count": int(call.state.catalog.count_items().get("track", 0)),
                           "lastScan": iso(finished) if finished else None}}


async def get_scan_status(call: Call) -> dict[str, Any]:
    return _scan_status(call)


async def start_scan(call: Call) -> dict[str, Any]:
    if not call.user.is_admin:
        raise SubsonicError(NOT_AUTHORIZED, "Only admins may start a scan")
    call.state.scans.start()  # a scan already running is fine: the answer says it is scanning
    return _scan_status(call)


HANDLERS: dict[str, Handler] = {
    "ping": ping, "getLicense": get_license, "getOpenSubsonicExtensions": get_extensions,
    "getUser": get_user, "getMusicFolders": get_music_folders, "getScanStatus": get_scan_status,
    "startScan": start_scan,
}
