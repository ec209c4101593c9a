"""The ``subsonic-response`` envelope as JSON, JSONP or XML (pure).

An answer is built once as plain data, in the JSON shape of the spec: a dict is an element, its scalar
values are attributes, a dict value is a child element, a list value is that child repeated, and the
key ``value`` is the element's text (lyrics, a lyrics line). XML is derived from that, so both formats
carry the same fields.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import orjson

from revenge import __version__

API_VERSION = "1.16.1"
SERVER_TYPE = "revenge"
XMLNS = "http://subsonic.org/restapi"
CALLBACK_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.]{0,63}")

# The spec's error codes.
GENERIC = 0
MISSING_PARAMETER = 10
CLIENT_MUST_UPGRADE = 20
SERVER_MUST_UPGRADE = 30
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
AUTH_NOT_SUPPORTED = 42
CONFLICTING_AUTH = 43
INVALID_API_KEY = 44
NOT_AUTHORIZED = 50
TRIAL_OVER = 60
NOT_FOUND = 70


class SubsonicError(Exception):
    """An answer of ``status="failed"`` (always HTTP 200, as clients expect)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def missing(name: str) -> SubsonicError:
    return SubsonicError(MISSING_PARAMETER, f"Required parameter is missing: {name}")


def not_found(what: str) -> SubsonicError:
    return SubsonicError(NOT_FOUND, f"{what} not found")


def envelope(body: Mapping[str, Any] | None = None, error: SubsonicError | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": "failed" if error else "ok", "version": API_VERSION,
                                "type": SERVER_TYPE, "serverVersion": __version__, "openSubsonic": True}
    if error is not None:
        response["error"] = {"code": error.code, "message": error.message}
    elif body:
        response.update(body)
    return {"subsonic-response": response}


def to_json(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document)


def to_jsonp(document: Mapping[str, Any], callback: str) -> bytes:
    """``callback(<json>);``: the callback is a JavaScript name (checked by the caller, CALLBACK_RE)."""
    return callback.encode() + b"(" + orjson.dumps(document) + b");"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if value is None:
            continue
        if key == "value" and not isinstance(value, (dict, list)):
            element.text = _text(value)
        elif isinstance(value, Mapping):
            _fill(ET.SubElement(element, key), value)
        elif isinstance(value, list):
            for entry in value:
                child = ET.SubElement(element, key)
                if isinstance(entry, Mapping):
                    _fill(child, entry)
                else:
                    child.text = _text(entry)
        else:
            element.set(key, _text(value))


def to_xml(document: Mapping[str, Any]) -> bytes:
    (name, body), = document.items()
    root = ET.Element(name, {"xmlns": XMLNS})
    _fill(root, body)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json",
           "jsonp": "text/javascript; charset=utf-8"}


def render(document: Mapping[str, Any], fmt: str, callback: str | None = None) -> tuple[bytes, str]:
    """The bytes and media type of ``document`` in ``fmt`` (xml, json, jsonp; checked by the caller)."""
    if fmt == "json":
        return to_json(document), FORMATS["json"]
    if fmt == "jsonp" and callback:
        return to_jsonp(document, callback), FORMATS["jsonp"]
    return to_xml(document), FORMATS["xml"]
