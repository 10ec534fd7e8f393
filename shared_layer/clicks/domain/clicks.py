"""Clicks, the pure part: what a click request is, whether it agrees with its token, its event.

The click use case (`shared_layer.clicks.service.tracker.ClickTracker`) verifies the token serve
signed, looks up the ad's registered URL and records the click once per impression. Everything here
is decided without a network: parsing the GET query and the POST body, the agreement between a body
and its token, the click event, how long the dedupe key must live, the Location header, and the
seams (`RedirectDirectory`, `ClickRecorder`) that the stores implement.

Example::

    request = parse_click_request(body)         # POST /click, strict
    check_agreement(request, claims)            # adId, campaignId, userId as signed
    event = click_event(claims, at=now)
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, Strict, StringConstraints, model_validator

from shared_layer.clicks.domain.clicktoken import ClickClaims
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import (
    AdServerError,
    NotFound,
    TokenExpired,
    UpstreamFailed,
    ValidationFailed,
)
from shared_layer.kernel.models import API_MODEL_CONFIG, Id, parse
from shared_layer.pipeline.domain.events import AdEvent

__all__ = [
    "CLICK_OUTCOMES",
    "DEDUPE_MARGIN_S",
    "MAX_CLICK_BODY_BYTES",
    "ClickOutcome",
    "ClickRecorder",
    "ClickRequest",
    "ClickResult",
    "RedirectDirectory",
    "check_agreement",
    "click_event",
    "dedupe_ttl_s",
    "error_outcome",
    "location_header",
    "parse_click_request",
    "token_from_query",
]

MAX_CLICK_BODY_BYTES: Final = 16 * 1024
DEDUPE_MARGIN_S: Final = 300  # clock skew between replicas, and a token used at its last second
_MAX_TOKEN_CHARS: Final = 8 * 1024  # far above any token serve signs; clicktoken checks exactly


class ClickOutcome(enum.StrEnum):
    """What became of a click with a genuine token."""

    COUNTED = "counted"  # recorded now: its event is in the outbox
    REPEAT = "repeat"  # this impression's click was counted before
    UNRECORDED = "unrecorded"  # Redis could not record it (GET still redirects)


CLICK_OUTCOMES: Final = (
    *(str(o) for o in ClickOutcome),
    "invalid",
    "expired",
    "not-found",
    "error",
)
"""The `outcome` label values of click_requests_total: a ClickOutcome, or why it was refused."""


@dataclass(frozen=True, slots=True)
class ClickResult:
    """Where to send the user, and whether this click was counted."""

    redirect_url: str
    outcome: ClickOutcome
    claims: ClickClaims

    @property
    def counted(self) -> bool:
        return self.outcome is ClickOutcome.COUNTED


# --- pure steps ---


def token_from_query(query: Mapping[str, str]) -> str:
    """The token of GET /?t=...; every other parameter is ignored (none is a destination).

    >>> token_from_query({"t": "v1.a.b", "url": "https://evil.example"})
    'v1.a.b'
    """
    token = query.get("t")
    if not token:
        raise ValidationFailed("t: the click token is required", ["t"])
    return token


def _timestamp(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2025-11-29T14:30:45.123Z") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone (Z or +hh:mm)")
    return value


Token = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=_MAX_TOKEN_CHARS)]
Timestamp = Annotated[str, Strict(), StringConstraints(max_length=40), AfterValidator(_timestamp)]


class ClickRequest(BaseModel):
    """POST /: the specification's click JSON plus the token (``token``, or ``t`` as in the URL).

    ``timestamp`` is the client's and only checked for form: the click counts for the UTC day
    we receive it, so a client clock cannot move clicks between days.
    """

    model_config = API_MODEL_CONFIG

    ad_id: Id
    campaign_id: Id
    user_id: Id
    timestamp: Timestamp | None = None
    token: Token | None = None
    t: Token | None = None

    @model_validator(mode="after")
    def _one_token(self) -> ClickRequest:
        if (self.token is None) == (self.t is None):
            raise ValueError("token: send the click token once, as token (or t)")
        return self

    @property
    def click_token(self) -> str:
        return self.token if self.token is not None else str(self.t)


def parse_click_request(body: bytes | str) -> ClickRequest:
    """Validate POST /'s JSON body; a 400 naming every bad field, or 413 above 16 KiB."""
    return parse(ClickRequest, body, max_bytes=MAX_CLICK_BODY_BYTES)


def check_agreement(request: ClickRequest, claims: ClickClaims) -> None:
    """A POST body must describe the click its token vouches for; otherwise a 400."""
    fields = [
        name
        for name, sent, signed in (
            ("adId", request.ad_id, claims.ad_id),
            ("campaignId", request.campaign_id, claims.campaign_id),
            ("userId", request.user_id, claims.user_id),
        )
        if sent != signed
    ]
    if fields:
        raise ValidationFailed(
            f"the click does not match its token: {', '.join(fields)} differ", fields
        )


def click_event(claims: ClickClaims, at: datetime) -> AdEvent:
    """The click event of a verified token (its id derives from the impression id)."""
    return AdEvent.click(
        impression_id=claims.impression_id,
        campaign_id=claims.campaign_id,
        ad_id=claims.ad_id,
        user_id=claims.user_id,
        placement_id=claims.placement_id,
        at=at,
    )


def dedupe_ttl_s(claims: ClickClaims, now: float) -> int:
    """How long ``click::seen`` must live: while the token may still be used, plus a margin.

    >>> dedupe_ttl_s(ClickClaims("i", "a", "c", "u", "p", expires_at=1_000), now=400.5)
    900
    """
    return max(0, math.ceil(claims.expires_at - now)) + DEDUPE_MARGIN_S


_LOCATION_SAFE: Final = "!#$%&'()*+,/:;=?@[]~-._"


def location_header(url: str) -> str:
    """`url` as an ASCII ``Location`` value: IDNA host, non-ASCII percent-encoded.

    A registered URL is validated when the campaign is written (absolute http(s), no control
    characters or spaces); checked again here, because a 302 must never carry anything else.

    >>> location_header("https://bücher.example/straße?q=1")
    'https://xn--bcher-kva.example/stra%C3%9Fe?q=1'
    """
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url)
    ):
        raise UpstreamFailed("the ad's registered URL is not an absolute http(s) URL")
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
            port = f":{parts.port}" if parts.port is not None else ""
        except (UnicodeError, ValueError) as exc:
            raise UpstreamFailed("the ad's registered URL has an invalid host or port") from exc
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = (quote(userinfo, safe=_LOCATION_SAFE) + "@" if userinfo else "") + host + port
    rest = [quote(part, safe=_LOCATION_SAFE) for part in (parts.path, parts.query, parts.fragment)]
    return urlunsplit((parts.scheme, netloc, *rest))


def error_outcome(exc: BaseException) -> str:
    """The click_requests_total outcome for a refused click."""
    if isinstance(exc, TokenExpired):
        return "expired"
    if isinstance(exc, NotFound):
        return "not-found"
    if isinstance(exc, AdServerError) and exc.status < 500:
        return "invalid"
    return "error"


class RedirectDirectory(Protocol):
    """Where an ad sends its clicks: its registered redirect URL, if it belongs to `campaign_id`."""

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None: ...


class ClickRecorder(Protocol):
    """Records a click once per impression; True if it was recorded by this call."""

    def record(
        self, event: AdEvent, ttl_s: int, correlation: Correlation | None = None
    ) -> bool: ...
