"""Click tokens: genuine ones verify; tampered, malformed, foreign or expired ones never do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.clicks.domain.clicktoken import ClickClaims, sign, verify
from shared_layer.kernel.errors import InvalidToken, TokenExpired

KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
NOW = 1_764_426_645
CLAIMS = ClickClaims(
    "imp-uuid-123", "ad-789", "campaign-456", "user-123", "placement-001", NOW + 3_600
)
URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=128)
claims = st.builds(ClickClaims, ids, ids, ids, ids, ids, st.integers(NOW, NOW + 10**8))


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
    for position in range(5):
        texts = ["id"] * 5
        texts[position] = "i" * 129
        with pytest.raises(ValueError, match="1 to 128"):
            sign(KEY, ClickClaims(*texts, expires_at=NOW))


@pytest.mark.parametrize("char", ["\x01", "\U0010ffff", "\u2603", "a"])
def test_the_longest_token_sign_can_make_still_verifies(char: str) -> None:
    # Ids of the maximum length in the characters that grow most in the JSON payload.
    longest = ClickClaims(*([char * 128] * 5), NOW + 10**8)
    assert verify(KEY, sign(KEY, longest), now=NOW) == longest


def test_the_placement_is_signed_with_the_rest() -> None:
    token = sign(KEY, CLAIMS)
    assert verify(KEY, token, now=NOW).placement_id == "placement-001"
    other = sign(
        KEY,
        ClickClaims(CLAIMS.impression_id, CLAIMS.ad_id, CLAIMS.campaign_id, CLAIMS.user_id,
                    "p-2", CLAIMS.expires_at),
    )  # fmt: skip
    # Same signature scheme, different placement: the signatures differ, so neither can be
    # moved onto the other's payload.
    assert token.rsplit(".", 1)[1] != other.rsplit(".", 1)[1]
    spliced = other.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]
    with pytest.raises(InvalidToken):
        verify(KEY, spliced, now=NOW)


def test_a_payload_without_a_claim_is_refused_even_when_signed() -> None:
    # A token in an older shape (no placement), signed with our key: never half-read.
    payload = json.dumps({"imp": "i", "ad": "a", "cmp": "c", "usr": "u", "exp": NOW + 60})
    body = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
    signed = f"v1.{body}"
    mac = hmac.new(KEY, signed.encode(), hashlib.sha256).digest()
    token = f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken, match="payload"):
        verify(KEY, token, now=NOW)
