"""Clicks: a signed click becomes at most one counted click event and a redirect to the ad's URL.

The use case of the click function, in three steps:

1. **Verify** the token serve put in the click-tracking URL (`clicktoken.verify`: signature,
   expiry). A forged, tampered or expired token stops here: nothing is read or written. A POST
   body must also agree with its token (adId, campaignId, userId).
2. **Look up** where the ad sends its clicks (`RegisteredAdUrls`): the campaign cache entry in
   Redis (``campaign::{campaignId}``), else PostgreSQL's ``ads`` row. PostgreSQL also answers
   for ads that were removed from their campaign, and for paused or ended campaigns: an ad that
   was shown may still be clicked, and that click must land and count. The ad must belong to
   the token's campaign. The redirect goes to that URL and nowhere else: no request parameter
   is ever used as a destination, so there is no open redirect.
3. **Record** the click (`RedisClickRecorder`): ONE Lua script checks
   ``click::seen::{impressionId}``, appends the click event to the event outbox (the stream
   the relay drains to Kafka, `outbox`) and sets the key with a TTL. Check, append and mark
   are one atomic step, so concurrent repeats count once and nothing is half-written (the
   append comes before the mark: if it fails, nothing was written at all). The key lives as
   long as the token could still be used, plus a margin, so a replay is never counted twice
   in the live counters; the event id (`events.click_event_id`) makes a second copy harmless
   in PostgreSQL anyway.

Redis unavailable: a GET still redirects the user (they reach the advertiser; the click is not
counted, reported as ``X-Click-Counted: false``, logged and counted in
``click_requests_total{outcome="unrecorded"}``). A POST is an API call: it answers 503, and the
caller may retry safely (the dedupe key makes a retry count once).

Example::

    tracker = ClickTracker(key, RegisteredAdUrls(CampaignCache(r), db), RedisClickRecorder(r))
    result = tracker.follow(token_from_query(request.query))   # GET: 302 to result.redirect_url
    result = tracker.submit(parse_click_request(request.body))  # POST: 204
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from aws_lambda_powertools import Logger
from prometheus_client import Counter
from pydantic import AfterValidator, BaseModel, Strict, StringConstraints, model_validator
from redis import exceptions as redis_errors

from .campaign_cache import CampaignCache
from .campaign_store import is_uuid
from .clicktoken import ClickClaims, verify
from .db import Database
from .errors import (
    AdServerError,
    NotFound,
    TokenExpired,
    UpstreamFailed,
    UpstreamUnavailable,
    ValidationFailed,
)
from .events import AdEvent
from .models import API_MODEL_CONFIG, Id, parse
from .outbox import OUTBOX_STREAM, outbox_fields

__all__ = [
    "CLICKS",
    "CLICK_OUTCOMES",
    "DEDUPE_MARGIN_S",
    "MAX_CLICK_BODY_BYTES",
    "RECORD_SCRIPT",
    "ClickOutcome",
    "ClickRecorder",
    "ClickRequest",
    "ClickResult",
    "ClickTracker",
    "RedirectDirectory",
    "RedisClickRecorder",
    "RegisteredAdUrls",
    "check_agreement",
    "click_event",
    "dedupe_ttl_s",
    "error_outcome",
    "location_header",
    "parse_click_request",
    "seen_key",
    "token_from_query",
]

MAX_CLICK_BODY_BYTES: Final = 16 * 1024
DEDUPE_MARGIN_S: Final = 300  # clock skew between replicas, and a token used at its last second
_MAX_TOKEN_CHARS: Final = 8 * 1024  # far above any token serve signs; clicktoken checks exactly

# KEYS[1] click::seen::{impressionId}, KEYS[2] the outbox stream.
# ARGV[1] TTL of the seen key (seconds), ARGV[2..] the XADD field/value list (outbox_fields).
# Returns 1 when the click was recorded now, 0 when this impression's click was recorded before.
RECORD_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
"""


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

CLICKS = Counter("click_requests_total", "Clicks answered, by outcome", ["outcome"])
for _outcome in CLICK_OUTCOMES:  # every series exists from the start, at zero
    CLICKS.labels(outcome=_outcome)

_LOGGER = Logger(service="clicks")


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


def seen_key(impression_id: str) -> str:
    """``click::seen::{impressionId}`` (braces not literal): set once the click is counted."""
    return f"click::seen::{impression_id}"


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
    """POST /: the seed's click JSON plus the token (``token``, or ``t`` as in the URL).

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


# --- the seams ---


class RedirectDirectory(Protocol):
    """Where an ad sends its clicks: its registered redirect URL, if it belongs to `campaign_id`."""

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None: ...


class ClickRecorder(Protocol):
    """Records a click once per impression; True if it was recorded by this call."""

    def record(self, event: AdEvent, ttl_s: int) -> bool: ...


class RegisteredAdUrls:
    """The campaign cache first (one Redis read), PostgreSQL's ads table otherwise."""

    def __init__(self, cache: CampaignCache, db: Database) -> None:
        self._cache = cache
        self._db = db

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None:
        try:
            campaign = self._cache.read([campaign_id])[campaign_id]
        except AdServerError:  # the cache is down: PostgreSQL still knows
            campaign = None
        if campaign is not None:
            for ad in campaign.ads:
                if ad.id == ad_id:
                    return ad.redirect_url
        return self._from_database(campaign_id, ad_id)

    def _from_database(self, campaign_id: str, ad_id: str) -> str | None:
        # Any status, removed ads included: what was shown may still be clicked.
        if not (is_uuid(campaign_id) and is_uuid(ad_id)):
            return None
        rows = self._db.run(
            "SELECT redirect_url FROM ads "
            "WHERE id = CAST(:ad AS uuid) AND campaign_id = CAST(:campaign AS uuid)",
            ad=ad_id,
            campaign=campaign_id,
        )
        return str(rows[0][0]) if rows else None


class RedisClickRecorder:
    """`RECORD_SCRIPT` by EVALSHA; `stream` is the outbox (tests give their own)."""

    def __init__(self, client: Any, *, stream: str = OUTBOX_STREAM) -> None:
        self._stream = stream
        self._script = client.register_script(RECORD_SCRIPT)

    def record(self, event: AdEvent, ttl_s: int) -> bool:
        keys = [seen_key(event.impression_id), self._stream]
        try:
            return bool(self._script(keys=keys, args=[ttl_s, *outbox_fields(event)]))
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise UpstreamUnavailable("click store unavailable: could not record in Redis") from exc
        except redis_errors.RedisError as exc:
            raise UpstreamFailed("click store error: Redis refused to record the click") from exc


# --- the use case ---


class ClickTracker:
    """Verify, look up, record: GET (`follow`) and POST (`submit`) differ only on Redis failure."""

    def __init__(
        self,
        key: bytes,
        directory: RedirectDirectory,
        recorder: ClickRecorder,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._directory = directory
        self._recorder = recorder
        self._clock = clock

    def follow(self, token: str) -> ClickResult:
        """A click on the tracking URL: the user is redirected even if Redis cannot count it."""
        now = self._clock()
        claims = verify(self._key, token, now=now)
        url = self._destination(claims)
        try:
            return ClickResult(url, self._record(claims, now), claims)
        except (UpstreamUnavailable, UpstreamFailed) as exc:
            _LOGGER.warning(
                "click not counted: Redis could not record it",
                extra={"impressionId": claims.impression_id, "error": exc.message},
            )
            return ClickResult(url, ClickOutcome.UNRECORDED, claims)

    def submit(self, request: ClickRequest) -> ClickResult:
        """A click reported by API: it must agree with its token; Redis failures are a 5xx."""
        now = self._clock()
        claims = verify(self._key, request.click_token, now=now)
        check_agreement(request, claims)
        url = self._destination(claims)
        return ClickResult(url, self._record(claims, now), claims)

    def _destination(self, claims: ClickClaims) -> str:
        url = self._directory.redirect_url(claims.campaign_id, claims.ad_id)
        if url is None:
            raise NotFound(f"ad {claims.ad_id} of campaign {claims.campaign_id} does not exist")
        return location_header(url)

    def _record(self, claims: ClickClaims, now: float) -> ClickOutcome:
        event = click_event(claims, datetime.fromtimestamp(now, UTC))
        recorded = self._recorder.record(event, dedupe_ttl_s(claims, now))
        return ClickOutcome.COUNTED if recorded else ClickOutcome.REPEAT
