"""Range and conditional request decisions (revenge/web/http_range.py)."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.web.http_range import (
    UNSATISFIABLE,
    Plan,
    entity_tags,
    parse_http_date,
    parse_range,
    plan_response,
)

SIZE = 1000
ETAG = '"abc-1"'
MTIME = 1_700_000_000
DATE = formatdate(MTIME, usegmt=True)


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-99", (0, 100)),
    ("bytes=0-0", (0, 1)),
    ("bytes=999-999", (999, 1000)),
    ("bytes=500-", (500, 1000)),
    ("bytes=-1", (999, 1000)),
    ("bytes=-250", (750, 1000)),
    ("bytes=-5000", (0, 1000)),
    ("bytes=990-5000", (990, 1000)),
    ("Bytes=1-2", (1, 3)),
    (" bytes = 1-2 ", (1, 3)),
    ("bytes=1000-", UNSATISFIABLE),
    ("bytes=1000-2000", UNSATISFIABLE),
    ("bytes=-0", UNSATISFIABLE),
    ("bytes=5-4", None),  # reversed: invalid, ignored
    ("bytes=0-1,4-5", None),  # several ranges: whole file
    ("bytes=-", None),
    ("bytes=", None),
    ("bytes", None),
    ("bytes=a-b", None),
    ("bytes=+1-2", None),
    ("bytes=1_0-20", None),
    ("bytes=0x10-20", None),
    ("bytes=1 -2", None),
    ("items=0-1", None),
    ("=0-1", None),
])
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, SIZE) == expected


def test_an_empty_file_satisfies_no_range() -> None:
    assert parse_range("bytes=0-", 0) is UNSATISFIABLE
    assert parse_range("bytes=-5", 0) is UNSATISFIABLE
    assert parse_range("bytes=0-0", 0) is UNSATISFIABLE


@given(size=st.integers(1, 10**12), first=st.integers(0, 10**12), last=st.integers(0, 10**12))
def test_first_last_ranges_match_python_slices(size: int, first: int, last: int) -> None:
    result = parse_range(f"bytes={first}-{last}", size)
    if last < first:
        assert result is None
    elif first >= size:
        assert result is UNSATISFIABLE
    else:
        assert result == (first, min(last + 1, size))
        start, stop = result
        assert 0 <= start < stop <= size


@given(size=st.integers(1, 10**6), suffix=st.integers(1, 2 * 10**6))
def test_suffix_ranges_are_the_last_bytes(size: int, suffix: int) -> None:
    data = range(size)
    result = parse_range(f"bytes=-{suffix}", size)
    assert isinstance(result, tuple)
    start, stop = result
    assert data[start:stop] == data[-suffix:]


def test_entity_tag_lists() -> None:
    assert entity_tags('"a"') == [(False, '"a"')]
    assert entity_tags(' "a" , W/"b",  "c" ') == [(False, '"a"'), (True, '"b"'), (False, '"c"')]
    assert entity_tags('""') == [(False, '""')]
    assert entity_tags("a") is None
    assert entity_tags('"a" "b"') is None
    assert entity_tags('"a",') == [(False, '"a"')]


def test_http_dates() -> None:
    assert parse_http_date(DATE) == MTIME
    assert parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT") == 1_700_000_000
    assert parse_http_date("yesterday") is None
    assert parse_http_date("") is None


def plan(**headers: str) -> Plan:
    return plan_response(size=SIZE, etag=ETAG, last_modified=MTIME, **headers)  # type: ignore[arg-type]


def test_plans_without_conditions() -> None:
    assert plan() == Plan(200, 0, SIZE)
    assert plan(range_header="bytes=10-19") == Plan(206, 10, 20)
    assert plan(range_header="bytes=5000-") == Plan(416)
    assert plan(range_header="bytes=junk") == Plan(200, 0, SIZE)


@pytest.mark.parametrize("inm", [ETAG, f'"x", {ETAG}', "*", f"W/{ETAG}", f" {ETAG} "])
def test_if_none_match_hits_are_304(inm: str) -> None:
    assert plan(if_none_match=inm).status == 304
    assert plan(if_none_match=inm, range_header="bytes=0-1").status == 304


def test_if_none_match_misses_and_beats_if_modified_since() -> None:
    assert plan(if_none_match='"other"') == Plan(200, 0, SIZE)
    assert plan(if_none_match='"other"', if_modified_since=DATE) == Plan(200, 0, SIZE)
    assert plan(if_none_match="garbage") == Plan(200, 0, SIZE)


def test_if_modified_since() -> None:
    assert plan(if_modified_since=DATE).status == 304
    assert plan(if_modified_since=formatdate(MTIME + 60, usegmt=True)).status == 304
    assert plan(if_modified_since=formatdate(MTIME - 1, usegmt=True)).status == 200
    assert plan(if_modified_since="not a date").status == 200


@pytest.mark.parametrize(("if_range", "status"), [
    (ETAG, 206),
    (DATE, 206),
    ('"stale"', 200),
    (f"W/{ETAG}", 200),  # weak validators never satisfy If-Range
    (formatdate(MTIME - 1, usegmt=True), 200),
    (formatdate(MTIME + 1, usegmt=True), 200),  # only the exact date counts
    ("nonsense", 200),
])
def test_if_range(if_range: str, status: int) -> None:
    result = plan(range_header="bytes=10-19", if_range=if_range)
    assert result.status == status
    assert (result.start, result.stop) == ((10, 20) if status == 206 else (0, SIZE))


def test_if_range_without_range_is_ignored() -> None:
    assert plan(if_range='"stale"') == Plan(200, 0, SIZE)


HUGE = "9" * 4301  # int() refuses more than 4300 digits


@pytest.mark.parametrize(("header", "expected"), [
    (f"bytes=0-{HUGE}", (0, SIZE)),
    (f"bytes={HUGE}-", UNSATISFIABLE),
    (f"bytes={HUGE}-{HUGE}", UNSATISFIABLE),
    (f"bytes={HUGE}-1", None),  # reversed
    (f"bytes=-{HUGE}", (0, SIZE)),
    (f"bytes=0{'0' * 5000}5-9", (5, 10)),  # leading zeros are still the same number
    ("bytes=0-99999999999999999999", (0, SIZE)),
    ("bytes=\u0663-\u0665", None),  # Arabic-Indic digits are not DIGIT (RFC 5234)
])
def test_huge_and_odd_positions(header: str, expected: object) -> None:
    assert parse_range(header, SIZE) == expected


def test_dates_with_absurd_years_are_not_dates() -> None:
    assert parse_http_date("Mon, 01 Jan 99999999999 00:00:00 GMT") is None
    assert plan(if_modified_since="Mon, 01 Jan 99999999999 00:00:00 GMT") == Plan(200, 0, SIZE)
    assert plan(range_header="bytes=0-1", if_range="Mon, 01 Jan 99999999999 00:00:00 GMT").status == 200


_DIGIT_RUNS = st.builds(lambda digit, n: digit * n, st.sampled_from("0123456789"), st.integers(0, 6000))
_HEADER_TEXT = st.one_of(
    st.text(),
    st.text(alphabet="bytes=0123456789-, W/\"*", max_size=60),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.text("0123456789", max_size=30), _DIGIT_RUNS),
    st.builds(lambda a, b: f"bytes={a}-{b}", _DIGIT_RUNS, _DIGIT_RUNS),
)


@given(size=st.integers(0, 10**13), header=_HEADER_TEXT)
def test_any_range_header_parses(size: int, header: str) -> None:
    result = parse_range(header, size)
    assert result is None or result is UNSATISFIABLE or 0 <= result[0] < result[1] <= size


@given(size=st.integers(0, 10**13), range_header=st.none() | _HEADER_TEXT,
       if_range=st.none() | _HEADER_TEXT, if_none_match=st.none() | _HEADER_TEXT,
       if_modified_since=st.none() | _HEADER_TEXT | st.builds(
           lambda year: f"Mon, 01 Jan {year} 00:00:00 GMT", st.integers(0, 10**30)))
def test_any_header_strings_give_a_plan(size: int, range_header: str | None, if_range: str | None,
                                        if_none_match: str | None, if_modified_since: str | None) -> None:
    result = plan_response(size=size, etag=ETAG, last_modified=MTIME, range_header=range_header,
                           if_range=if_range, if_none_match=if_none_match,
                           if_modified_since=if_modified_since)
    assert result.status in (200, 206, 304, 416)
    if result.status in (200, 206):
        assert 0 <= result.start <= result.stop <= size
