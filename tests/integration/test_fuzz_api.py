"""Schemathesis runs ``revenge/openapi.json`` against a live server (real uvicorn, a real generated
library, a real API key): no 5xx, and every answer conforms to the contract (status codes, content types,
headers, JSON schemas including the error body). Invalid input must be refused with a 4xx (negative
cases), valid input accepted (except where the contract cannot say why it is refused: see the exemptions).

Random ids almost never name anything, so the fuzzer would mostly see 404s. ``Realistic`` swaps a
well-formed id for a real one most of the time (items, sessions, bookmarks; in paths and in bodies), which
keeps a case exactly as valid or invalid as it was; stream routes sometimes use the signed ``?t=`` token a
playback session handed out instead of the bearer header. The examples the contract documents run as a
test of their own. Bounded: ``FUZZ_EXAMPLES`` per operation and phase (``REVENGE_FUZZ_EXAMPLES`` for a
longer exploration); ``REVENGE_FUZZ_SEED`` picks another seed (the default is fixed: reproducible CI).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema_rs  # schemathesis' own JSON Schema validator
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from revenge.playback.scrobbles import MIN_STARTED_AT_MS
from revenge.web.routes_static import load_assets
from tests.libgen import build_library
from tests.live import add_user, live_server
from tests.scrobble_fakes import FakeListenBrainz, Served

FUZZ_EXAMPLES = int(os.environ.get("REVENGE_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("REVENGE_FUZZ_SEED", "20240601"))

SPEC: dict[str, Any] = json.loads(resources.files("revenge").joinpath("openapi.json").read_bytes())


def schema_for(phases: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(SPEC, config=schemathesis.Config.from_dict({
        "seed": SEED,
        # Unknown query parameters are ignored by design (forward compatibility), not refused; credentials
        # are the test's (a real key, real tokens), never generated ones.
        "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES, "allow-extra-parameters": False,
                       "with-security-parameters": False},
        # A valid Range past the end of the file is a 416 (RFC 9110), not a refusal of valid input.
        "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "416", "429", "5xx"]}},
        "phases": {"stateful": {"enabled": False}, **phases},
    }))


# Generated cases (coverage and fuzzing phases), and the examples the contract documents: schemathesis
# cannot run the examples phase in a test that draws its own data.
# The event stream never ends by itself (tests/integration/test_events_http.py covers it).
ENDLESS = {"path": "/api/v1/events", "method": "GET"}
SCHEMA = schema_for({"examples": {"enabled": False}}).exclude(**ENDLESS)


def has_examples(operation: dict[str, Any]) -> bool:
    text = json.dumps([operation.get("parameters", []), operation.get("requestBody", {})])
    return '"example"' in text or '"examples"' in text


EXAMPLES = schema_for({"coverage": {"enabled": False}, "fuzzing": {"enabled": False}}).include(
    operation_id=[op["operationId"] for item in SPEC["paths"].values() for op in item.values()
                  if isinstance(op, dict) and "operationId" in op and has_examples(op)]).exclude(**ENDLESS)

# Valid per the schema yet refused with a 400, by design; the schema cannot say why:
POSITIVE_ACCEPTANCE_EXEMPT = {
    "GET /api/v1/items",  # `cursor` must be one the server handed out (opaque, signed by its content)
    "GET /api/v1/albums",  # `cursor` as for items (and of the same sort)
    "GET /api/v1/artists",  # `cursor` as for items
    "GET /api/v1/genres",  # `cursor` as for items
    "POST /api/v1/playback/scrobble",  # started_at ≤ now + 5 min; listened_seconds ≤ 3× the item's duration
    "GET /api/v1/stats/listening",  # to ≥ from, at most 366 days, a real calendar date
    "GET /api/v1/stream/{item_id}/playlist.m3u8",  # profiles=flac only for a lossless item
    "GET /api/v1/albums/{album_id}/playlist.m3u8",  # profiles=flac only for an all-lossless album
    "POST /api/v1/playback/sessions",  # 422 when the declared capabilities cannot play the item
    "PUT /api/v1/me/scrobblers/listenbrainz",  # the token must be one the service knows (400 invalid_token)
    "PUT /api/v1/queue",  # current_index must name one of the items
    "PATCH /api/v1/queue",  # indices must name an entry of the queue as it is then
    "POST /api/v1/podcasts",  # feed_url must name a reachable public feed (the fuzzer's hosts do not exist)
    "POST /api/v1/podcasts:opml",  # the body must be an OPML document
}

BATCH = "POST /api/v1/playback/progress:batch"


def spec_validator(name: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


BATCH_UPDATE = spec_validator("BatchUpdate")
BATCH_ENVELOPE = jsonschema_rs.Draft202012Validator({
    "type": "object", "required": ["updates"],
    "properties": {"updates": {"type": "array", "maxItems": 1000}}})


def batch_results_match_the_updates(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """The batch answers 200 with one result per update, and an invalid update fails alone (its own 4xx
    result): schemathesis' negative check, which wants the whole request refused, does not apply.
    Instead: a bad envelope is a 400; in a 200, each update invalid per the contract has a 4xx result
    (404 when its item_id names no item: the item is looked up first),
    and each valid one a 200, a 404 (no such item) or a 503."""
    if f"{case.method} {case.path}" != BATCH:
        return None
    body = case.body
    if isinstance(body, bytes | str):  # sent raw (e.g. a body of another media type)
        try:
            body = json.loads(body)
        except ValueError:
            status = response.status_code
            assert status in (400, 401, 413), f"a non-JSON batch answered {status}"
            return True
    if not BATCH_ENVELOPE.is_valid(body):
        assert response.status_code in (400, 401, 413), f"a malformed batch answered {response.status_code}"
        return True
    if response.status_code != 200:
        return None
    results = response.json()["results"]
    assert len(results) == len(body["updates"]), "one result per update"
    for index, (update, result) in enumerate(zip(body["updates"], results, strict=True)):
        expected = (200, 404, 503) if BATCH_UPDATE.is_valid(update) else (400, 404)
        assert result["status"] in expected, (
            f"updates[{index}] answered {result['status']}, expected one of {expected}: {update!r}")
    return True


@dataclass(frozen=True)
class Target:
    url: str
    key: str
    item_ids: tuple[str, ...]
    tokens: dict[str, str]  # item id → a signed stream token for it
    session_ids: tuple[str, ...]
    bookmarks: dict[str, tuple[str, ...]]  # item id → bookmark ids
    started_ms: int  # when the fixture started the server (scrobbles must not lie in the future)
    album_ids: tuple[str, ...] = ()
    artist_ids: tuple[str, ...] = ()
    turns: Iterator[int] = field(default_factory=itertools.count)  # spreads the examples over the items


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    lib = build_library(tmp_path_factory.mktemp("library"))
    data = tmp_path_factory.mktemp("data")
    key = add_user(data, "fuzzer")
    started_ms = int(time.time() * 1000)
    # A local ListenBrainz (which knows none of the generated tokens): nothing leaves the machine.
    listenbrainz = Served(FakeListenBrainz().app())
    # Room for the sessions the fuzzer starts, and the fixture's sessions outlive a slow run.
    with contextlib.closing(listenbrainz), \
            live_server(lib.settings(data, sessions_per_user=64, session_idle_seconds=3600,
                                     listenbrainz_url=listenbrainz.url)) as live, \
            httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        listed = client.get("/api/v1/items", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        item_ids = tuple(sorted(item["id"] for item in listed.json()["items"]))
        assert len(item_ids) == len(lib.items)
        tokens: dict[str, str] = {}
        sessions: list[str] = []
        bookmarks: dict[str, tuple[str, ...]] = {}
        for n, item_id in enumerate(item_ids):
            started = client.post("/api/v1/playback/sessions", json={
                "item_id": item_id, "device_id": f"fuzz-{n}",
                "capabilities": {"codecs": ["aac", "mp3"], "containers": ["mp4", "mp3"]}})
            assert started.status_code == 201, started.text
            body = started.json()
            sessions.append(body["session_id"])
            tokens[item_id] = parse_qs(urlsplit(body["url"]).query)["t"][0]
            marks = []
            for position in (1.0, 2.5):
                added = client.post(f"/api/v1/items/{item_id}/bookmarks",
                                    json={"position_seconds": position, "note": "fuzz"})
                assert added.status_code == 201, added.text
                marks.append(added.json()["id"])
            bookmarks[item_id] = tuple(marks)
        albums = tuple(a["id"] for a in client.get("/api/v1/albums", params={"limit": 500}).json()["albums"])
        artists = tuple(a["id"]
                        for a in client.get("/api/v1/artists", params={"limit": 500}).json()["artists"])
        assert albums and artists
        yield Target(live.url, key, item_ids, tokens, tuple(sessions), bookmarks, started_ms,
                     album_ids=albums, artist_ids=artists)


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(SPEC["components"]["schemas"][name]["pattern"])


ITEM_ID = _pattern("ItemId")
SESSION_ID = _pattern("SessionId")
BOOKMARK_ID = re.compile(SPEC["components"]["schemas"]["Bookmark"]["properties"]["id"]["pattern"])
STATIC_NAMES = tuple(sorted(load_assets()))


def _fits(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


T = TypeVar("T")


class Draws:
    """Choices made through Hypothesis, so failures still shrink and replay."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def often(self, label: str) -> bool:
        return self.data.draw(st.integers(0, 3), label=label) > 0

    def pick(self, options: Sequence[T], label: str) -> T:
        return self.data.draw(st.sampled_from(options), label=label)

    def integer(self, low: int, high: int, label: str) -> int:
        return self.data.draw(st.integers(low, high), label=label)


class Always:
    """Deterministic choices for the documented examples: always the real thing, in turn."""

    def __init__(self, turn: int) -> None:
        self.turn = turn

    def often(self, label: str) -> bool:
        return True

    def pick(self, options: Sequence[T], label: str) -> T:
        return options[self.turn % len(options)]

    def integer(self, low: int, high: int, label: str) -> int:
        return low


class Realistic:
    """Swaps generated values for real ones where the swap keeps the case as valid or invalid as it
    was: a well-formed id becomes the id of something that exists (most of the time), a valid segment
    number one that exists, a valid scrobble time one within the server's clock window."""

    def __init__(self, case: schemathesis.Case, choose: Draws | Always, target: Target) -> None:
        self.case, self.choose, self.target = case, choose, target

    def often(self, label: str) -> bool:
        return self.choose.often(label)

    def item_id(self, value: object) -> object:
        if _fits(ITEM_ID, value) and self.often("real item?"):
            return self.choose.pick(self.target.item_ids, "item_id")
        return value

    def path(self) -> None:
        params = self.case.path_parameters
        if not params:
            return
        if "item_id" in params:
            params["item_id"] = self.item_id(params["item_id"])
        marks = self.target.bookmarks.get(params.get("item_id", ""), ())
        if _fits(BOOKMARK_ID, params.get("bookmark_id")) and marks and self.often("real bookmark?"):
            params["bookmark_id"] = self.choose.pick(marks, "bookmark_id")
        for name, real in (("album_id", self.target.album_ids), ("artist_id", self.target.artist_ids)):
            if _fits(ITEM_ID, params.get(name)) and self.often(f"real {name}?"):
                params[name] = self.choose.pick(real, name)
        if _fits(SESSION_ID, params.get("session_id")) and self.often("real session?"):
            params["session_id"] = self.choose.pick(self.target.session_ids, "session_id")
        index = params.get("index")
        valid_index = isinstance(index, int | str) and not isinstance(index, bool) \
            and re.fullmatch(r"0|[1-9][0-9]{0,8}", str(index)) is not None
        if valid_index and self.often("early segment?"):
            params["index"] = self.choose.integer(0, 2, "index")
        if self.case.path == "/static/{name}" and self.often("real asset?"):
            params["name"] = self.choose.pick(STATIC_NAMES, "name")

    def body(self) -> None:
        body = self.case.body
        if not isinstance(body, dict):
            return
        if "item_id" in body:
            body["item_id"] = self.item_id(body["item_id"])
        updates = body.get("updates")
        for update in updates if isinstance(updates, list) else ():
            if isinstance(update, dict) and "item_id" in update:
                update["item_id"] = self.item_id(update["item_id"])
        if self.case.path.startswith("/api/v1/queue"):
            self.queue_items(body)
            ops = body.get("ops")
            for op in ops if isinstance(ops, list) else ():
                if isinstance(op, dict):
                    self.queue_items(op)
        if self.case.path == "/api/v1/playback/scrobble":
            started = body.get("started_at")
            if _number(started) and started >= MIN_STARTED_AT_MS and self.often("recent listen?"):
                # An offset from a fixed instant: Hypothesis needs the same bounds on every replay.
                ago = self.choose.integer(0, 30 * 86_400_000, "ms ago")
                body["started_at"] = self.target.started_ms - ago
            listened = body.get("listened_seconds")
            if _number(listened) and listened >= 0 and self.often("short listen?"):
                body["listened_seconds"] = self.choose.integer(0, 3, "seconds")

    def queue_items(self, body: dict[str, Any]) -> None:
        items = body.get("items")
        if isinstance(items, list):
            body["items"] = [self.item_id(item) for item in items]

    def stream_token(self) -> str | None:
        """A stream route with a real item: sometimes its signed token instead of the bearer header."""
        item_id = (self.case.path_parameters or {}).get("item_id")
        if self.case.path.startswith("/api/v1/stream/") and self.case.method != "OPTIONS" \
                and item_id in self.target.tokens and self.choose.integer(0, 1, "stream token?") == 1:
            return self.target.tokens[item_id]
        return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def call_and_validate(case: schemathesis.Case, realistic: Realistic, target: Target) -> None:
    realistic.path()
    realistic.body()
    token = realistic.stream_token()
    # Credentials go in as transport arguments so the checks know them for the test's own (and probe
    # that the server refuses the request without them).
    credentials: dict[str, Any] = (
        {"params": {"t": token}} if token else {"headers": {"Authorization": f"Bearer {target.key}"}})
    operation = f"{case.method} {case.path}"
    excluded: list[CheckFunction] = []
    if operation in POSITIVE_ACCEPTANCE_EXEMPT:
        excluded.append(positive_data_acceptance)
    if operation == BATCH:
        excluded.append(negative_data_rejection)
    case.call_and_validate(base_url=target.url, excluded_checks=excluded,
                           additional_checks=[batch_results_match_the_updates], timeout=30, **credentials)


@SCHEMA.given(data=st.data())
@SCHEMA.parametrize()
def test_api_conforms_to_the_contract(case: schemathesis.Case, data: st.DataObject, target: Target) -> None:
    call_and_validate(case, Realistic(case, Draws(data), target), target)


@EXAMPLES.parametrize()
def test_documented_examples_work(case: schemathesis.Case, target: Target) -> None:
    call_and_validate(case, Realistic(case, Always(next(target.turns)), target), target)


def integer_query_parameters() -> list[tuple[str, str]]:
    """(path, name) of every integer query parameter of a GET in the contract."""
    found = []
    for path, item in SPEC["paths"].items():
        for param in item.get("get", {}).get("parameters", []):
            schema = param.get("schema", {})
            types = [schema.get("type"), *(s.get("type") for s in schema.get("anyOf", []))]
            if param.get("in") == "query" and "integer" in types and "{" not in path:
                found.append((path, param["name"]))
    return found


# What a generator rarely draws but str.isdigit() lets through, or int() refuses.
NOT_INTEGERS = ("²", "٣", "１", "1" * 5000, "-1", "1.0", " 1", "0x10")


@pytest.mark.parametrize(("path", "name"), integer_query_parameters())
def test_integer_query_parameters_refuse_what_is_not_ascii_digits(target: Target, path: str,
                                                                  name: str) -> None:
    with httpx.Client(base_url=target.url, headers={"Authorization": f"Bearer {target.key}"}) as client:
        for value in NOT_INTEGERS:
            response = client.get(path, params={name: value})
            assert response.status_code == 400, (value[:10], response.text)
            assert response.json()["error"]["field"] == name


SAMPLE_PATH_VALUES = {"item_id": "a" * 16, "session_id": "a" * 22, "bookmark_id": "a" * 16,
                      "album_id": "a" * 16, "artist_id": "a" * 16,
                      "profile": "aac-128", "index": "0", "name": "app.js", "art_id": "a" * 24,
                      "podcast_id": "a" * 16, "episode_id": "a" * 16, "device_id": "phone",
                      "endpoint": "ping"}
IMPLICIT = {"HEAD", "OPTIONS"}


def method_cases() -> list[Any]:
    """(path, an undocumented method, the documented methods) for every path of the contract,
    including paths whose methods are served by several Starlette routes (Starlette's own 405 would
    name the first route's methods only; errors.py unites them)."""
    cases = []
    for path, item in SPEC["paths"].items():
        documented = {m.upper() for m in item
                      if m in ("get", "put", "post", "delete", "patch", "options", "head")}
        if "GET" in documented:
            documented.add("HEAD")
        method = next(m for m in ("PATCH", "PUT", "POST", "DELETE") if m not in documented)
        cases.append(pytest.param(path, method, documented, id=f"{method} {path}"))
    return cases


@pytest.mark.parametrize(("path", "method", "documented"), method_cases())
def test_an_undocumented_method_is_405_with_allow_listing_the_documented_ones(
        target: Target, path: str, method: str, documented: set[str]) -> None:
    url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)
    response = httpx.request(method, target.url + url, headers={"Authorization": f"Bearer {target.key}"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed - {"OPTIONS"} == documented - {"OPTIONS"}
