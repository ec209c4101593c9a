"""The /rest/ protocol over real HTTP: formats, .view, POST forms, required parameters, every auth way
and its failure codes, the login limit, unknown endpoints."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.subsonic.conftest import Rest

NS = "{http://subsonic.org/restapi}"


def raw(rest: Rest, endpoint: str, **params: str) -> httpx.Response:
    return httpx.get(f"{rest.live.url}/rest/{endpoint}", params=params, timeout=30)


def error_of(response: httpx.Response) -> int | None:
    assert response.status_code == 200
    body = response.json()["subsonic-response"]
    return body["error"]["code"] if body["status"] == "failed" else None


def test_ping_in_xml_json_jsonp_with_and_without_view(rest: Rest) -> None:
    base = {"v": "1.16.1", "c": "t", "apiKey": rest.key}
    xml = raw(rest, "ping", **base)
    assert xml.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == f"{NS}subsonic-response" and root.get("status") == "ok"
    assert root.get("version") == "1.16.1" and root.get("type") == "revenge"
    assert root.get("openSubsonic") == "true"
    body = raw(rest, "ping.view", **base, f="json").json()["subsonic-response"]
    assert body["status"] == "ok" and body["openSubsonic"] is True and body["serverVersion"]
    jsonp = raw(rest, "ping", **base, f="jsonp", callback="handle")
    assert jsonp.text.startswith("handle({") and jsonp.text.endswith("});")


def test_post_form_carries_every_parameter(rest: Rest) -> None:
    response = httpx.post(f"{rest.live.url}/rest/getUser.view",
                          data={"v": "1.16.1", "c": "t", "f": "json", "apiKey": rest.key}, timeout=30)
    assert response.json()["subsonic-response"]["user"]["username"] == "ann"


def test_missing_v_or_c_is_10_and_a_future_major_version_is_30(rest: Rest) -> None:
    assert error_of(raw(rest, "ping", c="t", f="json", apiKey=rest.key)) == 10
    assert error_of(raw(rest, "ping", v="1.16.1", f="json", apiKey=rest.key)) == 10
    assert error_of(raw(rest, "ping", v="2.0.0", c="t", f="json", apiKey=rest.key)) == 30
    assert error_of(raw(rest, "ping", v="0.9", c="t", f="json", apiKey=rest.key)) == 20


def test_unknown_endpoint_is_an_envelope_not_a_404_page(rest: Rest) -> None:
    response = raw(rest, "getVideos.view", v="1.16.1", c="t", apiKey=rest.key)
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.get("status") == "failed" and root.find(f"{NS}error").get("code") == "70"  # type: ignore


def test_each_login_and_each_failure_code(rest: Rest) -> None:
    base = {"v": "1.16.1", "c": "t", "f": "json"}
    assert error_of(raw(rest, "ping", **base, apiKey=rest.key)) is None
    assert error_of(raw(rest, "ping", **base, u="ann", p=rest.key)) is None
    assert error_of(raw(rest, "ping", **base, u="ann", p="enc:" + rest.key.encode().hex())) is None
    token = hashlib.md5((rest.app_password + "s4lt").encode()).hexdigest()
    assert error_of(raw(rest, "ping", **base, u="ann", t=token, s="s4lt")) is None
    assert error_of(raw(rest, "ping", **base)) == 10  # no credentials
    assert error_of(raw(rest, "ping", **base, u="ann")) == 10
    assert error_of(raw(rest, "ping", **base, u="ann", t=token)) == 10  # no salt
    assert error_of(raw(rest, "ping", **base, apiKey="rv_wrong")) == 44
    assert error_of(raw(rest, "ping", **base, apiKey=rest.key, u="ann")) == 43
    assert error_of(raw(rest, "ping", **base, u="ann", p=rest.key, t=token, s="s4lt")) == 43
    assert error_of(raw(rest, "ping", **base, u="ann", p="wrong")) == 40
    assert error_of(raw(rest, "ping", **base, u="boss", p=rest.key)) == 40  # ann's key, not boss's
    assert error_of(raw(rest, "ping", **base, u="ann", t=token, s="other")) == 40
    # A token login tells nothing of which names exist: a user without an app password (boss), a name
    # that is no user and a wrong token all get the same 40 and message.
    failures = [raw(rest, "ping", **base, u=name, t=token, s=salt).json()["subsonic-response"]["error"]
                for name, salt in (("boss", "s4lt"), ("nobody-here", "s4lt"), ("ann", "other"))]
    assert failures == [{"code": 40, "message": "Wrong username or password"}] * 3


def from_address(rest: Rest, address: str, **params: str) -> dict[str, object]:
    """A ping sent from another loopback address (its own login limits)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=30) as client:
        response = client.get(f"{rest.live.url}/rest/ping", params={"v": "1.16.1", "c": "t", "f": "json",
                                                                     **params})
    body: dict[str, object] = response.json()["subsonic-response"]
    return body


def test_failed_logins_are_limited_per_user_then_per_address(rest: Rest) -> None:
    for n in range(10):
        assert from_address(rest, "127.0.0.2", u="ann", p=f"guess{n}")["error"]["code"] == 40  # type: ignore
    limited = from_address(rest, "127.0.0.2", u="ann", p=rest.key)  # even the right key, for now
    assert limited["error"] == {"code": 40, "message": limited["error"]["message"]}  # type: ignore
    assert "Too many failed logins" in limited["error"]["message"]  # type: ignore[index]
    assert from_address(rest, "127.0.0.3", u="ann", p=rest.key)["status"] == "failed"  # ann is limited
    assert from_address(rest, "127.0.0.3", apiKey=rest.key)["status"] == "ok"  # keys are not by name
    for n in range(50):  # the address's fifty (some of ann's above were refused unchecked: not counted)
        from_address(rest, "127.0.0.2", u=f"user{n}", p="guess")
    assert from_address(rest, "127.0.0.2", apiKey=rest.key)["error"]["code"] == 44  # type: ignore[index]
    assert from_address(rest, "127.0.0.4", apiKey=rest.key)["status"] == "ok"


@pytest.mark.parametrize("endpoint, params, code", [
    ("getAlbum", {}, 10), ("getAlbum", {"id": "al-aaaaaaaaaaaaaaaa"}, 70),
    ("getSong", {"id": "../../etc/passwd"}, 70), ("getSong", {"id": "aaaaaaaaaaaaaaaa\n"}, 70),
    ("getArtist", {"id": "al-aaaaaaaaaaaaaaaa"}, 70), ("getCoverArt", {"id": "/etc/passwd"}, 70),
    ("stream", {"id": "%2e%2e%2fetc"}, 70), ("getAlbumList2", {}, 10),
    ("getAlbumList2", {"type": "newest", "size": "x"}, 0), ("getAlbumList2", {"type": "nope"}, 0),
    ("getAlbumList2", {"type": "byYear", "fromYear": "2000"}, 10),
])
def test_bad_input_gets_the_spec_code(rest: Rest, endpoint: str, params: dict[str, str], code: int) -> None:
    assert error_of(rest.get(endpoint, **params)) == code
