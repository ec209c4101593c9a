from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.security import secrets as stream_secrets
from revenge.security.signing import TokenError, sign_stream_token, verify_stream_token

SECRET = b"s" * 32
OTHER = b"o" * 32
ITEM = "abcdefghijklmnop"
NOW = 1_800_000_000


def test_valid_token_round_trips() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW + 60)
    grant = verify_stream_token([SECRET], token, ITEM, NOW)
    assert (grant.user_id, grant.item_id, grant.expires_at) == ("7", ITEM, NOW + 60)


def test_every_tampered_byte_is_refused() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW + 60)
    for i in range(len(token)):
        for replacement in "0A_":
            if token[i] == replacement:
                continue
            bad = token[:i] + replacement + token[i + 1:]
            with pytest.raises(TokenError):
                verify_stream_token([SECRET], bad, ITEM, NOW)


def test_last_character_spare_bits_do_not_verify() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW + 60)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    for delta in (1, 2, 3):
        sibling = alphabet[(last & ~3) | ((last + delta) & 3)]
        with pytest.raises(TokenError):
            verify_stream_token([SECRET], token[:-1] + sibling, ITEM, NOW)


def test_wrong_item_refused() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW + 60)
    with pytest.raises(TokenError) as info:
        verify_stream_token([SECRET], token, "bbbbbbbbbbbbbbbb", NOW)
    assert info.value.reason == "bad_signature"


def test_expired_refused() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW)
    with pytest.raises(TokenError) as info:
        verify_stream_token([SECRET], token, ITEM, NOW)
    assert info.value.reason == "expired"


def test_other_user_cannot_reuse_by_editing_user_id() -> None:
    token = sign_stream_token(SECRET, "7", ITEM, NOW + 60)
    forged = "8" + token[1:]
    with pytest.raises(TokenError):
        verify_stream_token([SECRET], forged, ITEM, NOW)


def test_rotation_accepts_previous_secret_and_refuses_dropped_one() -> None:
    old = sign_stream_token(OTHER, "7", ITEM, NOW + 60)
    assert verify_stream_token([SECRET, OTHER], old, ITEM, NOW).user_id == "7"
    with pytest.raises(TokenError):
        verify_stream_token([SECRET], old, ITEM, NOW)


@pytest.mark.parametrize(
    "junk", ["", "x", "7.1.", "7..abc", "a.b.c", "7.1." + "A" * 42 + "=", "7.1." + "A" * 200]
)
def test_malformed_refused(junk: str) -> None:
    with pytest.raises(TokenError) as info:
        verify_stream_token([SECRET], junk, ITEM, NOW)
    assert info.value.reason == "malformed"


triples = st.tuples(
    st.integers(min_value=1, max_value=10**6).map(str),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=16, max_size=16),
    st.integers(min_value=0, max_value=2**40),
)


@given(st.lists(triples, min_size=2, max_size=30, unique=True))
def test_no_two_triples_share_a_token(values: list[tuple[str, str, int]]) -> None:
    tokens = {sign_stream_token(SECRET, u, i, e) for u, i, e in values}
    assert len(tokens) == len(values)


def test_secrets_file_created_rotated_and_kept(tmp_path: Path) -> None:
    first = stream_secrets.load_or_create(tmp_path)
    assert len(first) == 1 and len(first[0]) == 32
    assert stream_secrets.load_or_create(tmp_path) == first
    assert (tmp_path / stream_secrets.FILE_NAME).stat().st_mode & 0o777 == 0o600
    rotated = stream_secrets.rotate(tmp_path)
    assert rotated[1] == first[0] and rotated[0] != first[0]
    again = stream_secrets.rotate(tmp_path)
    assert first[0] not in again and again[1] == rotated[0]


def test_damaged_secrets_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / stream_secrets.FILE_NAME).write_text("zz\n")
    with pytest.raises(ValueError, match="damaged"):
        stream_secrets.load_or_create(tmp_path)
