"""Click tokens: genuine ones verify; tampered, malformed, foreign or expired ones never do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.clicktoken import ClickClaims, sign, verify
from shared_layer.errors import InvalidToken, TokenExpired

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
NOW = 1_764_426_645
CLAIMS = ClickClaims("imp-uuid-123", "ad-789", "campaign-456", "user-123", NOW + 3_600)
URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=128)
claims = st.builds(ClickClaims, ids, ids, ids, ids, st.integers(NOW, NOW + 10**8))


@given(claims)
def test_a_genuine_token_verifies_to_its_claims(original: ClickClaims) -> None:
    token = sign(KEY, original)
    assert set(token) <= URL_SAFE
    assert verify(KEY, token, now=NOW - 1) == original


@given(st.data())
def test_any_tampering_is_rejected(data: st.DataObject) -> None:
    token = sign(KEY, CLAIMS)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(sorted(URL_SAFE - {token[position]})))
    tampered = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(InvalidToken) as caught:
        verify(KEY, tampered, now=NOW)
    assert type(caught.value) is InvalidToken  # never "expired": that would confirm a signature


@given(st.text(max_size=300))
def test_arbitrary_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidToken):
        verify(KEY, text, now=NOW)


@given(st.integers(0, 10**6))
def test_expired_tokens_are_rejected_at_and_after_expiry(late_by: int) -> None:
    token = sign(KEY, CLAIMS)
    with pytest.raises(TokenExpired):
        verify(KEY, token, now=CLAIMS.expires_at + late_by)


def test_a_token_is_valid_until_the_second_before_expiry() -> None:
    assert verify(KEY, sign(KEY, CLAIMS), now=CLAIMS.expires_at - 0.001) == CLAIMS


def test_another_key_is_rejected() -> None:
    with pytest.raises(InvalidToken, match="signature"):
        verify(OTHER_KEY, sign(KEY, CLAIMS), now=NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".",
        lambda t: t + "=",
        lambda t: t.replace("v1.", "v2.", 1),
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: "." + t,
        lambda t: t.replace(".", ".A", 1),
        lambda t: t + "é",
        lambda t: "v1." + "A" * 3_000 + "." + t.rsplit(".", 1)[1],
        lambda t: "",
    ],
)
def test_malformed_tokens_are_rejected(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidToken):
        verify(KEY, mangle(sign(KEY, CLAIMS)), now=NOW)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        sign(b"short", CLAIMS)
    with pytest.raises(ValueError, match="32 bytes"):
        verify(b"short", "v1.a.b", now=NOW)


def test_claims_too_long_to_verify_are_never_signed() -> None:
    too_long = ClickClaims("i" * 129, "ad", "c", "u", NOW)
    with pytest.raises(ValueError, match="1 to 128"):
        sign(KEY, too_long)


@pytest.mark.parametrize("char", ["\x01", "\U0010ffff", "\u2603", "a"])
def test_the_longest_token_sign_can_make_still_verifies(char: str) -> None:
    # Ids of the maximum length in the characters that grow most in the JSON payload.
    longest = ClickClaims(*([char * 128] * 4), NOW + 10**8)
    assert verify(KEY, sign(KEY, longest), now=NOW) == longest
