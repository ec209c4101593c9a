"""JSON Schemas of the answers the tests check, written from the OpenSubsonic response pages
(github.com/opensubsonic/open-subsonic-api, content/en/docs/Responses/): the required fields and their
types; fields beyond them are allowed, as the spec allows."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

STRING, INT, BOOL, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
ISO_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
RATING = {"type": "integer", "minimum": 1, "maximum": 5}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


ITEM_GENRE = obj({"name": STRING})
ARTIST = obj({"id": STRING, "name": STRING}, {"coverArt": STRING, "albumCount": INT, "starred": ISO_TIME,
                                              "userRating": RATING, "musicBrainzId": STRING,
                                              "sortName": STRING})
CHILD = obj({"id": STRING, "isDir": BOOL, "title": STRING}, {
    "parent": STRING, "album": STRING, "artist": STRING, "track": INT, "year": INT, "genre": STRING,
    "coverArt": STRING, "size": INT, "contentType": STRING, "starred": ISO_TIME, "userRating": RATING,
    "suffix": STRING, "duration": INT,
    "bitRate": INT, "samplingRate": INT, "channelCount": INT, "isVideo": BOOL, "discNumber": INT,
    "albumId": STRING, "artistId": STRING, "type": STRING, "mediaType": STRING, "bpm": INT,
    "comment": STRING, "sortName": STRING, "musicBrainzId": STRING, "genres": array(ITEM_GENRE),
    "artists": array(ARTIST), "displayArtist": STRING, "displayAlbumArtist": STRING,
    "replayGain": obj({}, {"trackGain": NUMBER, "trackPeak": NUMBER, "albumGain": NUMBER,
                           "albumPeak": NUMBER}),
})
ALBUM = obj({"id": STRING, "name": STRING, "songCount": INT, "duration": INT, "created": STRING}, {
    "artist": STRING, "artistId": STRING, "coverArt": STRING, "year": INT, "genre": STRING,
    "starred": ISO_TIME, "userRating": RATING,
    "recordLabels": array(obj({"name": STRING})), "musicBrainzId": STRING, "genres": array(ITEM_GENRE),
    "artists": array(ARTIST), "displayArtist": STRING, "isCompilation": BOOL,
    "originalReleaseDate": obj({}, {"year": INT, "month": INT, "day": INT}),
    "discTitles": array(obj({"disc": INT, "title": STRING})),
})
ALBUM_WITH_SONGS = {**ALBUM, "properties": {**ALBUM["properties"], "song": array(CHILD)}}
ARTIST_WITH_ALBUMS = {**ARTIST, "properties": {**ARTIST["properties"], "album": array(ALBUM)}}
INDEX = obj({"name": STRING, "artist": array(ARTIST)})
LINE = obj({"value": STRING}, {"start": INT})
STRUCTURED_LYRICS = obj({"lang": STRING, "synced": BOOL, "line": array(LINE)},
                        {"displayArtist": STRING, "displayTitle": STRING, "offset": NUMBER})
PLAYLIST = obj({"id": STRING, "name": STRING, "songCount": INT, "duration": INT, "created": STRING,
                "changed": STRING}, {"comment": STRING, "owner": STRING, "public": BOOL, "coverArt": STRING})
PLAYLIST_WITH_SONGS = {**PLAYLIST, "properties": {**PLAYLIST["properties"], "entry": array(CHILD)}}
SEARCH_RESULT = obj({}, {"artist": array(ARTIST), "album": array(ALBUM), "song": array(CHILD)})

BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "ping": ("", {}),
    "getLicense": ("license", obj({"valid": BOOL})),
    "getOpenSubsonicExtensions": ("openSubsonicExtensions",
                                  array(obj({"name": STRING, "versions": array(INT)}))),
    "getUser": ("user", obj({"username": STRING, "scrobblingEnabled": BOOL, "adminRole": BOOL,
                             "settingsRole": BOOL, "downloadRole": BOOL, "uploadRole": BOOL,
                             "playlistRole": BOOL, "coverArtRole": BOOL, "commentRole": BOOL,
                             "podcastRole": BOOL, "streamRole": BOOL, "jukeboxRole": BOOL,
                             "shareRole": BOOL, "videoConversionRole": BOOL}, {"folder": array(INT)})),
    "getMusicFolders": ("musicFolders", obj({}, {"musicFolder": array(obj({"id": INT}, {"name": STRING}))})),
    "getArtists": ("artists", obj({"ignoredArticles": STRING}, {"index": array(INDEX)})),
    "getIndexes": ("indexes", obj({"ignoredArticles": STRING, "lastModified": INT},
                                  {"index": array(INDEX)})),
    "getArtist": ("artist", ARTIST_WITH_ALBUMS),
    "getAlbum": ("album", ALBUM_WITH_SONGS),
    "getSong": ("song", CHILD),
    "getMusicDirectory": ("directory", obj({"id": STRING, "name": STRING}, {"child": array(CHILD)})),
    "getGenres": ("genres", obj({}, {"genre": array(obj({"value": STRING, "songCount": INT,
                                                        "albumCount": INT}))})),
    "getAlbumList2": ("albumList2", obj({}, {"album": array(ALBUM)})),
    "getAlbumList": ("albumList", obj({}, {"album": array(CHILD)})),
    "getRandomSongs": ("randomSongs", obj({}, {"song": array(CHILD)})),
    "getSongsByGenre": ("songsByGenre", obj({}, {"song": array(CHILD)})),
    "search3": ("searchResult3", SEARCH_RESULT),
    "search2": ("searchResult2", SEARCH_RESULT),
    "getLyricsBySongId": ("lyricsList", obj({}, {"structuredLyrics": array(STRUCTURED_LYRICS)})),
    "getLyrics": ("lyrics", obj({}, {"artist": STRING, "title": STRING, "value": STRING})),
    "getScanStatus": ("scanStatus", obj({"scanning": BOOL}, {"count": INT, "lastScan": STRING})),
    "getArtistInfo2": ("artistInfo2", obj({}, {"musicBrainzId": STRING})),
    "getAlbumInfo2": ("albumInfo", obj({}, {"musicBrainzId": STRING})),
    "getStarred2": ("starred2", SEARCH_RESULT),
    "getPlaylists": ("playlists", obj({}, {"playlist": array(PLAYLIST)})),
    "getPlaylist": ("playlist", PLAYLIST_WITH_SONGS),
    "getStarred": ("starred", SEARCH_RESULT),
    "getNowPlaying": ("nowPlaying", obj({}, {"entry": array({**CHILD, "required": [
        *CHILD["required"], "username", "minutesAgo", "playerId"]})})),
    "getPlayQueue": ("playQueue", obj({"username": STRING, "changed": STRING, "changedBy": STRING},
                                      {"entry": array(CHILD), "current": STRING, "position": INT})),
    "getBookmarks": ("bookmarks", obj({}, {"bookmark": array(obj(
        {"position": INT, "username": STRING, "created": STRING, "changed": STRING, "entry": CHILD}))})),
}

ENVELOPE = obj({"status": {"enum": ["ok", "failed"]}, "version": STRING, "type": STRING,
                "serverVersion": STRING, "openSubsonic": {"const": True}},
               {"error": obj({"code": {"enum": [0, 10, 20, 30, 40, 41, 42, 43, 44, 50, 60, 70]},
                              "message": STRING})})


def validate(endpoint: str, document: dict[str, Any]) -> dict[str, Any]:
    """Check a JSON answer of ``endpoint`` against the envelope and its body's schema; return the body."""
    assert list(document) == ["subsonic-response"]
    response = document["subsonic-response"]
    jsonschema_rs.validate(ENVELOPE, response)
    assert response["status"] == "ok", response
    key, schema = BODIES[endpoint]
    if not key:
        return response
    assert key in response, (endpoint, list(response))
    jsonschema_rs.validate(schema, response[key])
    body: dict[str, Any] = response[key]
    return body
