from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson

from revenge.subsonic.envelope import (
    NOT_FOUND,
    SubsonicError,
    envelope,
    render,
    to_json,
    to_jsonp,
    to_xml,
)

NS = "{http://subsonic.org/restapi}"


def test_ok_envelope_carries_version_type_and_open_subsonic() -> None:
    doc = envelope({"license": {"valid": True}})
    body = orjson.loads(to_json(doc))["subsonic-response"]
    assert body["status"] == "ok" and body["version"] == "1.16.1" and body["type"] == "revenge"
    assert body["openSubsonic"] is True and body["serverVersion"] and body["license"] == {"valid": True}


def test_error_envelope_has_code_and_message_and_no_body() -> None:
    doc = envelope({"ignored": {}}, SubsonicError(NOT_FOUND, "Song not found"))
    body = doc["subsonic-response"]
    assert body["status"] == "failed" and body["error"] == {"code": 70, "message": "Song not found"}
    assert "ignored" not in body
    root = ET.fromstring(to_xml(doc))
    assert root.get("status") == "failed"
    assert root.find(f"{NS}error").attrib == {"code": "70", "message": "Song not found"}  # type: ignore


def test_xml_mirrors_json_attributes_children_lists_and_text() -> None:
    doc = envelope({"album": {"id": "al-1", "name": "A & <B>", "year": 2001, "starred": None,
                              "song": [{"id": "s1", "isDir": False}, {"id": "s2", "isDir": False}],
                              "genres": [{"name": "Rock"}]},
                    "lyrics": {"artist": "X", "value": "line one\nline two"}})
    root = ET.fromstring(to_xml(doc))
    assert root.tag == f"{NS}subsonic-response" and root.get("openSubsonic") == "true"
    album = root.find(f"{NS}album")
    assert album is not None and album.get("name") == "A & <B>" and album.get("year") == "2001"
    assert album.get("starred") is None  # None is left out, not "None"
    assert [s.get("id") for s in album.findall(f"{NS}song")] == ["s1", "s2"]
    assert album.find(f"{NS}song").get("isDir") == "false"  # type: ignore[union-attr]
    assert album.find(f"{NS}genres").get("name") == "Rock"  # type: ignore[union-attr]
    lyrics = root.find(f"{NS}lyrics")
    assert lyrics is not None and lyrics.text == "line one\nline two" and lyrics.get("artist") == "X"


def test_jsonp_wraps_the_json_and_formats_have_their_media_types() -> None:
    doc = envelope()
    assert to_jsonp(doc, "cb") == b"cb(" + to_json(doc) + b");"
    assert render(doc, "json")[1] == "application/json"
    assert render(doc, "jsonp", "cb")[0].startswith(b"cb(")
    body, media = render(doc, "xml")
    assert media.startswith("text/xml") and body.startswith(b"<?xml")
