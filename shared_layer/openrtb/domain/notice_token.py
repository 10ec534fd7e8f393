"""Signed OpenRTB win and billing notices: proof that a notice is for a bid we made.

The `openrtb` function puts a token in each bid's ``nurl`` (win notice) and ``burl`` (billing
notice); the notice routes verify it before they record anything. The token binds our bid id,
the impression id, the campaign, the ad, the bid's CPM and the micros its impression was
charged, with an expiry, under HMAC-SHA256 with a key only the function holds (the OpenFaaS
secret ``openrtb-notice-key``, as click tokens use ``click-signing-key``). A forged or altered
notice (an unknown bid) is `InvalidToken` (400), an old one `TokenExpired` (410); neither is
recorded.

Format, as click tokens (`clicks.domain.clicktoken`) but with its own version prefix, so that one
kind of
token can never be taken for the other even under the same key::

    n1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "n1." + base64url(claims)))>

Example::

    token = sign(key, NoticeClaims("b-1", "imp-1", "c-1", "a-1", 2_500_000, 2_500, exp))
    claims = verify(key, token, now=time.time())    # the same claims, or an error
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Final

from shared_layer.kernel.errors import InvalidToken, TokenExpired
from shared_layer.kernel.signed_token import MIN_KEY_BYTES, open_token, seal

__all__ = ["MIN_KEY_BYTES", "NoticeClaims", "sign", "verify"]

_VERSION: Final = "n1"
_MAX_TOKEN_CHARS: Final = 2048
_TEXT_FIELDS: Final = ("bid_id", "imp_id", "campaign_id", "ad_id")
_INT_FIELDS: Final = ("cpm_micros", "charge_micros", "expires_at")


@dataclass(frozen=True, slots=True)
class NoticeClaims:
    """What a notice token vouches for; `expires_at` is in unix seconds (UTC)."""

    bid_id: str
    imp_id: str
    campaign_id: str
    ad_id: str
    cpm_micros: int  # what we bid (the auction price can be at most this)
    charge_micros: int  # what the bid's impression was charged in the ledger
    expires_at: int


def sign(key: bytes, claims: NoticeClaims) -> str:
    """A URL-safe token for `claims`, signed with `key` (at least 32 bytes).

    >>> sign(b"k" * 32, NoticeClaims("b", "1", "c", "a", 2_500_000, 2_500, 1_900_000_000))[:3]
    'n1.'
    """
    payload = json.dumps(asdict(claims), separators=(",", ":"), sort_keys=True)
    return seal(key, _VERSION, payload.encode(), kind="notice token")


def verify(key: bytes, token: str, now: float) -> NoticeClaims:
    """The claims of a genuine, unexpired `token`, or `InvalidToken` / `TokenExpired`.

    The signature is compared in constant time before the payload is parsed.
    """
    payload = open_token(key, _VERSION, token, max_chars=_MAX_TOKEN_CHARS, kind="notice token")
    claims = _claims(payload)
    if now >= claims.expires_at:
        raise TokenExpired("notice token has expired")
    return claims


def _claims(payload: bytes) -> NoticeClaims:
    # Reached only with a valid signature: a failure here means our own signer is broken.
    try:
        data = json.loads(payload)
        texts = [data[name] for name in _TEXT_FIELDS]
        numbers = [data[name] for name in _INT_FIELDS]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("notice token payload is malformed") from exc
    if not all(isinstance(t, str) and t for t in texts) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise InvalidToken("notice token payload is malformed")
    return NoticeClaims(*texts, *numbers)
