"""Signed click-tracking tokens: proof that a click belongs to an impression we served.

serve puts a token in the click-tracking URL; click verifies it before it counts anything or
redirects anyone. The token binds impressionId, adId, campaignId, userId and placementId (the
click event records where the ad was shown), and the serve request id that is the ad's
correlation id (`kernel.correlation`; optional, so older tokens still verify), with an expiry, under
an HMAC-SHA256 signature with a key only our functions hold (an OpenFaaS secret). Whoever changes
one character gets `InvalidToken`; an old link gets `TokenExpired`. The payload is not
encrypted: it holds nothing the URL does not already show.

Format (URL-safe, no padding, nothing to escape in a query string)::

    v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "v1." + base64url(claims)))>

The version prefix is signed too, so a future v2 (key rotation) cannot be confused with v1.

Example::

    key = settings.click_token_key                     # bytes from the secret file
    token = sign(key, ClickClaims("imp-1", "ad-1", "c-1", "u-1", "p-1", expires_at=now + 86_400))
    claims = verify(key, token, now=time.time())       # the same ClickClaims, or an error
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from shared_layer.kernel.correlation import is_request_id
from shared_layer.kernel.errors import InvalidToken, TokenExpired
from shared_layer.kernel.signed_token import MIN_KEY_BYTES, check_key, open_token, seal

__all__ = ["MIN_KEY_BYTES", "ClickClaims", "sign", "verify"]

_VERSION: Final = "v1"
_MAX_CLAIM_CHARS: Final = 128
# The longest token `sign` can make, so that `verify` never refuses a genuine one: six ids of
# 128 characters (five claims and the request id), each at most 6 bytes in the JSON payload (a
# control character becomes \u00XX; anything else is at most 4 UTF-8 bytes), the keys and a
# 20-digit expiry, in base64 (4 chars per 3 bytes), plus the version and the signature.
_MAX_PAYLOAD_BYTES: Final = 6 * _MAX_CLAIM_CHARS * 6 + 128
_MAX_TOKEN_CHARS: Final = len("v1.") + (_MAX_PAYLOAD_BYTES * 4 + 2) // 3 + 1 + 43


@dataclass(frozen=True, slots=True)
class ClickClaims:
    """What a click token vouches for; `expires_at` is in unix seconds (UTC)."""

    impression_id: str
    ad_id: str
    campaign_id: str
    user_id: str
    placement_id: str
    expires_at: int
    request_id: str | None = None  # the serve request that showed the ad (correlation id)


def sign(key: bytes, claims: ClickClaims) -> str:
    """A URL-safe token for `claims`, signed with `key` (at least 32 bytes).

    >>> sign(b"k" * 32, ClickClaims("imp-1", "ad-1", "c-1", "u-1", "p-1", 1_900_000_000))[:3]
    'v1.'
    """
    check_key(key, "click token")
    texts = (
        claims.impression_id,
        claims.ad_id,
        claims.campaign_id,
        claims.user_id,
        claims.placement_id,
    )
    if not all(0 < len(text) <= _MAX_CLAIM_CHARS for text in texts):
        raise ValueError(f"click token ids must be 1 to {_MAX_CLAIM_CHARS} characters")
    fields = {
        "imp": claims.impression_id,
        "ad": claims.ad_id,
        "cmp": claims.campaign_id,
        "usr": claims.user_id,
        "plc": claims.placement_id,
        "exp": claims.expires_at,
    }
    if claims.request_id is not None:
        if not is_request_id(claims.request_id):
            raise ValueError("the click token's request id is not a request id")
        fields["rid"] = claims.request_id
    payload = json.dumps(
        fields,
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )
    return seal(key, _VERSION, payload.encode(), kind="click token")


def verify(key: bytes, token: str, now: float) -> ClickClaims:
    """The claims of a genuine, unexpired `token`; otherwise our error saying what is wrong.

    Raises `InvalidToken` (400) for a malformed or tampered token and `TokenExpired` (410) for a
    genuine one at or after its expiry. The signature is compared in constant time and checked
    before the payload is parsed, so nothing an attacker wrote is interpreted unsigned.
    """
    payload = open_token(key, _VERSION, token, max_chars=_MAX_TOKEN_CHARS, kind="click token")
    claims = _claims(payload)
    if now >= claims.expires_at:
        raise TokenExpired("click token has expired")
    return claims


def _claims(payload: bytes) -> ClickClaims:
    # Reached only with a valid signature: a failure here means our own signer is broken.
    try:
        data = json.loads(payload)
        texts = [data["imp"], data["ad"], data["cmp"], data["usr"], data["plc"]]
        expires_at = data["exp"]
        request_id = data.get("rid")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("click token payload is malformed") from exc
    if (
        not all(isinstance(t, str) and 0 < len(t) <= _MAX_CLAIM_CHARS for t in texts)
        or not isinstance(expires_at, int)
        or isinstance(expires_at, bool)
        or (request_id is not None and not is_request_id(request_id))
    ):
        raise InvalidToken("click token payload is malformed")
    impression_id, ad_id, campaign_id, user_id, placement_id = texts
    return ClickClaims(
        impression_id, ad_id, campaign_id, user_id, placement_id, expires_at, request_id
    )
