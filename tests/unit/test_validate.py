"""The request validators: one copy each, and no whole-value check lets a trailing newline through
(``$`` matches before a final ``\\n``; every such check must match the whole value)."""

from __future__ import annotations

import pytest

from revenge.library.layout import DISC_FOLDER_RE
from revenge.library.model import is_valid_item_id
from revenge.playback.bookmarks import is_valid_bookmark_id
from revenge.playback.scrobbles import ISO_DATE_RE, SCROBBLE_ID_RE
from revenge.playback.sessions import is_session_id
from revenge.progress.model import is_device_id
from revenge.security.keys import USER_NAME_RE
from revenge.security.signing import TokenError, sign_stream_token, verify_stream_token
from revenge.web.errors import ApiError
from revenge.web.validate import (
    DEFAULT_DEVICE_ID,
    device_id_value,
    int_field,
    int_param,
    limit_param,
    non_negative_field,
    playback_rate_field,
)

VALID = [
    (is_device_id, "phone-1"),
    (is_valid_item_id, "abcdefghijklmnop"),
    (is_session_id, "A" * 22),
    (is_valid_bookmark_id, "B" * 16),
    (lambda v: USER_NAME_RE.fullmatch(v) is not None, "alice"),
    (lambda v: SCROBBLE_ID_RE.fullmatch(v) is not None, "abcdefghijklmnop-123"),
    (lambda v: ISO_DATE_RE.fullmatch(v) is not None, "2026-12-02"),
    (lambda v: DISC_FOLDER_RE.fullmatch(v) is not None, "CD 2"),
]


@pytest.mark.parametrize(("check", "value"), VALID)
def test_a_valid_value_passes_and_the_same_with_a_newline_does_not(check, value) -> None:  # type: ignore[no-untyped-def]
    assert check(value)
    assert not check(value + "\n")
    assert not check("\n" + value)


def test_a_stream_token_with_a_trailing_newline_is_refused() -> None:
    token = sign_stream_token(b"k" * 32, "17", "abcdefghijklmnop", 2_000_000_000)
    assert verify_stream_token([b"k" * 32], token, "abcdefghijklmnop", 1_000).user_id == "17"
    with pytest.raises(TokenError):
        verify_stream_token([b"k" * 32], token + "\n", "abcdefghijklmnop", 1_000)


def test_device_id_value() -> None:
    assert device_id_value(None) == DEFAULT_DEVICE_ID
    assert device_id_value("kitchen.speaker:1") == "kitchen.speaker:1"
    for bad in ("phone\n", "", "-lead", "x" * 65, 7, "has space"):
        with pytest.raises(ApiError) as caught:
            device_id_value(bad, "updates[2].device_id")
        assert caught.value.status == 400 and caught.value.field == "updates[2].device_id"
    with pytest.raises(ApiError, match="required"):
        device_id_value(None, required_message="device_id is required")


def test_limit_param() -> None:
    assert limit_param(None, 20, 100) == 20 and limit_param("", 20, 100) == 20
    assert limit_param("100", 20, 100) == 100
    for bad in ("0", "101", "²", "1e3", "-1", "9" * 5000, "1\n"):
        with pytest.raises(ApiError) as caught:
            limit_param(bad, 20, 100, "size")
        assert caught.value.field == "size"


def test_int_param_takes_zero_and_its_range() -> None:
    assert int_param(None, 0, 9999, "year") is None and int_param("", 0, 9999, "year") is None
    assert int_param("0", 0, 9999, "year") == 0 and int_param("2024", 0, 9999, "year") == 2024
    for bad in ("10000", "-1", "²", "1.5"):
        with pytest.raises(ApiError) as caught:
            int_param(bad, 0, 9999, "year_from")
        assert caught.value.field == "year_from"


def test_numbers() -> None:
    assert non_negative_field({}, "start", required=False) is None
    assert non_negative_field({"start": 0}, "start", required=True) == 0.0
    for body in ({"start": -1}, {"start": True}, {"start": "1"}):
        with pytest.raises(ApiError) as caught:
            non_negative_field(body, "start", required=True, prefix="u[1].")
        assert caught.value.field == "u[1].start"
    assert playback_rate_field({}) == 1.0 and playback_rate_field({"playback_rate": 2}) == 2.0
    for rate in (0, -1, 17, float("nan"), "fast", False):
        with pytest.raises(ApiError):
            playback_rate_field({"playback_rate": rate})


def test_int_field() -> None:
    assert int_field({"index": 3}, "index") == 3 and int_field({"index": 3.0}, "index") == 3
    assert int_field({}, "index", required=False) is None
    for bad in (-1, 1.5, True, "3", 2**53):
        with pytest.raises(ApiError) as caught:
            int_field({"index": bad}, "index", prefix="ops[2].")
        assert caught.value.field == "ops[2].index"
    with pytest.raises(ApiError, match="required"):
        int_field({}, "index")
