"""serve's side of the decisioning path: the ad request, the call to bid, the ad response.

Why this module: serve's hot path has one dangerous step, the call to bid through the gateway,
and three pure ones around it (query to `BidRequest`, bid's answer back to a model, the ad
response with its signed click URL). The pure steps are functions here, unit-tested without a
network; the call is `BidClient`, which guarantees serve's promise: an answer within the
deadline, whatever bid does.

`BidClient` keeps one pooled keep-alive connection pool (urllib3) per process, a total deadline
per call (connect + send + wait + read: `Timeout(total=...)`, no retries, since a retried bid
could be charged twice), and a circuit breaker (pybreaker): after `failure_threshold`
consecutive failures (timeouts, connection errors, 5xx, 429, unreadable answers) the circuit
opens and calls fail at once for `reset_timeout_s`, then one trial call decides. A failure is
never an exception for the caller: `call` returns a `BidResult` whose `no_fill` says why
(`NoFillReason`, sent as the ``X-No-Fill-Reason`` header and counted in metrics).

The breaker is used through ``CircuitBreaker.calling()`` rather than ``call()``: ``call()`` holds
the breaker's lock for the whole guarded call, which would let only one request talk to bid at
a time; ``calling()`` takes the lock only to check and update the state.

Example::

    client = BidClient("http://10.62.0.1:8080/function/bid", timeout_s=0.08)
    result = client.call(bid_request_from_query(request.query), request_id=..., traceparent=...)
    if result.no_fill: ...       # 204, X-No-Fill-Reason: result.no_fill
    body = ad_response(result.bid, result.impression_id, click_tracking_url(...))
"""

from __future__ import annotations

import enum
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

import pybreaker
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from shared_layer.bidding.domain.deadline import DEADLINE_HEADER, deadline_header
from shared_layer.bidding.domain.privacy_params import PRIVACY_PARAMETERS, with_privacy
from shared_layer.bidding.metrics import BID_CALL_SECONDS, BREAKER_STATE
from shared_layer.clicks.domain.clicktoken import ClickClaims, sign
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import BidRequest, BidResponse, SlotsRequest, parse
from shared_layer.kernel.money import parse_micros, to_json_number

__all__ = [
    "SERVE_PARAMETERS",
    "BidClient",
    "BidResult",
    "ClickSigner",
    "NoFillReason",
    "SlotsResult",
    "ad_response",
    "bid_request_from_query",
    "click_tracking_url",
    "explain_headers",
    "parse_bid_answer",
    "parse_slots_answer",
]

SERVE_PARAMETERS: Final = (
    "userId", "placementId", "countryCode", "deviceType", "age", "interests", "keyValues",
    *PRIVACY_PARAMETERS, "explain",
)  # fmt: skip
"""The query parameters of GET /serve; any other is refused (a misspelling is a 400). explain
is passed on to bid (`explain_headers`)."""

_AGE = re.compile(r"[0-9]{1,3}")
_IMPRESSION_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
_ATTRIBUTE_NAMES: Final = {"userAttributes.age": "age", "userAttributes.interests": "interests"}


class NoFillReason(enum.StrEnum):
    """Why serve answered 204; the value is the ``X-No-Fill-Reason`` header."""

    NO_BID = "no-bid"  # bid answered: nothing eligible, or every budget spent
    BID_TIMEOUT = "bid-timeout"  # bid did not answer within the deadline
    BID_ERROR = "bid-error"  # bid unreachable, 5xx/429, or an answer we cannot read
    CIRCUIT_OPEN = "circuit-open"  # too many recent failures: bid was not called


@dataclass(frozen=True, slots=True)
class BidResult:
    """bid's answer: a winning bid with its impression id, or the reason there is none."""

    bid: BidResponse | None = None
    impression_id: str = ""
    no_fill: NoFillReason | None = None
    explanation: dict[str, Any] | None = None  # bid's explainer, for an admin's explain=1


@dataclass(frozen=True, slots=True)
class SlotsResult:
    """bid's answer to several slots: each slot's (bid, impression id) winners by name."""

    slots: dict[str, list[tuple[BidResponse, str]]]
    no_fill: NoFillReason | None = None
    explanation: dict[str, Any] | None = None  # bid's explainer, for an admin's explain=1


class _BidFailed(Exception):
    """A call that counts against the breaker (5xx, 429, unreadable answer)."""


class _BreakerStateMetric(pybreaker.CircuitBreakerListener):
    """Keeps `BREAKER_STATE` at the breaker's state, for the dashboard and its alert."""

    def state_change(
        self, cb: pybreaker.CircuitBreaker, old_state: object, new_state: object
    ) -> None:
        BREAKER_STATE.state(str(getattr(new_state, "name", new_state)))


class BidClient:
    """POSTs bid requests to bid with a total deadline and a circuit breaker; thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        failure_threshold: int = 5,
        reset_timeout_s: float = 3.0,
        max_connections: int = 32,
    ) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._timeout = urllib3.Timeout(total=timeout_s)
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=max_connections, block=False, retries=False
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=reset_timeout_s,
            throw_new_error_on_trip=False,  # the tripping call keeps its own reason
            name="bid",
            listeners=[_BreakerStateMetric()],
        )

    def call(
        self,
        request: BidRequest,
        *,
        request_id: str,
        traceparent: str,
        headers: Mapping[str, str] | None = None,
    ) -> BidResult:
        """Ask bid for an ad; never raises for bid's failures, never waits past the deadline.
        `headers` are passed on (`explain_headers`)."""
        # Without key-values the body is the specification's, byte for byte (an older bid takes it).
        unsaid = None if request.key_values else {"key_values"}
        return self._exchange(
            request.model_dump_json(exclude_none=True, exclude=unsaid).encode(),
            request_id,
            traceparent,
            _read_bid,
            headers,
        )

    def call_slots(
        self,
        request: SlotsRequest,
        *,
        request_id: str,
        traceparent: str,
        headers: Mapping[str, str] | None = None,
    ) -> SlotsResult:
        """Ask bid for several slots' ads, with the same deadline and breaker as `call`."""
        result = self._exchange(
            request.model_dump_json(exclude_none=True).encode(),
            request_id,
            traceparent,
            _read_slots,
            headers,
        )
        return result if isinstance(result, SlotsResult) else SlotsResult({}, result.no_fill)

    def _exchange(
        self,
        body: bytes,
        request_id: str,
        traceparent: str,
        read: Callable[[bytes], Any],
        more_headers: Mapping[str, str] | None,
    ) -> Any:
        headers = {
            **(more_headers or {}),
            "Content-Type": "application/json",
            "X-Request-Id": request_id,
            "traceparent": traceparent,
            DEADLINE_HEADER: deadline_header(time.time(), self._timeout_s),
        }
        started = time.perf_counter()
        try:
            with self.breaker.calling():
                try:
                    response = self._pool.request(
                        "POST", self.url, body=body, headers=headers, timeout=self._timeout
                    )
                finally:
                    BID_CALL_SECONDS.observe(time.perf_counter() - started)
                if response.status >= 500 or response.status == 429:
                    raise _BidFailed(f"bid answered {response.status}")
                if response.status == 200:
                    try:
                        return read(response.data)
                    except ValidationFailed as exc:
                        raise _BidFailed("bid's answer is invalid") from exc
        except pybreaker.CircuitBreakerError:
            return BidResult(no_fill=NoFillReason.CIRCUIT_OPEN)
        except NewConnectionError:  # a subclass of the connect timeout; refused is an error
            return BidResult(no_fill=NoFillReason.BID_ERROR)
        except Urllib3Timeout:
            return BidResult(no_fill=NoFillReason.BID_TIMEOUT)
        except (HTTPError, _BidFailed):
            return BidResult(no_fill=NoFillReason.BID_ERROR)
        if response.status == 204:
            return BidResult(no_fill=NoFillReason.NO_BID)
        # Another 4xx: serve sent something bid refused; our bug, not bid's outage.
        return BidResult(no_fill=NoFillReason.BID_ERROR)


def bid_request_from_query(
    query: Mapping[str, str], *, vendor_id: int | None = None, request_id: str = ""
) -> BidRequest:
    """The /bid request for GET /serve's query parameters, or `ValidationFailed` (400).

    userId and placementId are required; countryCode, deviceType, age (whole number) and
    interests (comma-separated, no spaces around the commas: each item is matched exactly) are
    optional; a parameter that is given must not be empty, and unknown parameters are refused.
    The privacy parameters (gdpr, gdpr_consent, us_privacy, coppa) apply the privacy rules
    (`bidding.domain.privacy_params.with_privacy`, our TCF vendor id `vendor_id`; `request_id`
    names the anonymous user).

    >>> bid_request_from_query({"userId": "u-1", "placementId": "p-1", "age": "25",
    ...                         "interests": "tech,gaming"}).interests == {"tech", "gaming"}
    True
    """
    problems: list[str] = []
    fields: list[str] = []

    def problem(name: str, text: str) -> None:
        fields.append(name)
        problems.append(f"{name}: {text}")

    unknown = sorted(name for name in query if name not in SERVE_PARAMETERS)
    for name in unknown[:5]:
        problem(name[:64], "unknown parameter")
    for name in ("userId", "placementId"):
        if name not in query:
            problem(name, "is required")
    for name in SERVE_PARAMETERS[:6]:
        if name in query and not query[name]:
            problem(name, "must not be empty")
    if problems:
        raise ValidationFailed("invalid request: " + "; ".join(problems), fields)
    data: dict[str, Any] = {k: query[k] for k in SERVE_PARAMETERS[:4] if k in query}
    attributes: dict[str, Any] = {}
    if "age" in query:
        if not _AGE.fullmatch(query["age"]):
            raise ValidationFailed("invalid request: age: must be a whole number", ["age"])
        attributes["age"] = int(query["age"])
    if "interests" in query:
        interests = query["interests"].split(",")
        if not all(interests):
            raise ValidationFailed(
                "invalid request: interests: must be comma-separated, without empty items",
                ["interests"],
            )
        attributes["interests"] = interests
    if attributes:
        data["userAttributes"] = attributes
    if "keyValues" in query:
        data["keyValues"] = _key_values(query["keyValues"])
    try:
        request = parse(BidRequest, data)
    except ValidationFailed as exc:
        message, names = exc.message, list(exc.fields)
        for inner, outer in _ATTRIBUTE_NAMES.items():
            message = message.replace(inner, outer)
            names = [outer if n.startswith(inner) else n for n in names]
        raise ValidationFailed(
            message.replace("invalid BidRequest", "invalid request"), names
        ) from exc
    return with_privacy(request, query, vendor_id=vendor_id, request_id=request_id)


def _key_values(text: str) -> dict[str, list[str]]:
    """``section:sports|news,lang:fr`` -> {"section": ["sports", "news"], "lang": ["fr"]}."""
    pairs: dict[str, list[str]] = {}
    for pair in text.split(","):
        key, colon, values = pair.partition(":")
        if not key or not colon or not all(values.split("|")):
            raise ValidationFailed(
                "invalid request: keyValues: write key:value|value,key:value", ["keyValues"]
            )
        pairs.setdefault(key, []).extend(values.split("|"))
    return pairs


def explain_headers(query: Mapping[str, str], header: Callable[[str], str]) -> dict[str, str]:
    """What serve passes on to bid when a request asks for the explainer (``explain=1`` or
    ``X-Explain: 1``, with a bearer token): bid checks the token and explains, or ignores it."""
    if query.get("explain") != "1" and header("x-explain") != "1":
        return {}
    authorization = header("authorization")
    return {"X-Explain": "1", "Authorization": authorization} if authorization else {}


def parse_bid_answer(body: bytes | str) -> tuple[BidResponse, str]:
    """bid's 200 body as (BidResponse, impressionId), money read exactly; or ValidationFailed."""
    return _bid_answer(_json(body))


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise ValidationFailed("bid response is not valid JSON", ["body"]) from exc


def _explanation(data: Any) -> dict[str, Any] | None:
    """Takes bid's ``explain`` object out of its answer (None when there is none)."""
    explanation = data.pop("explain", None) if isinstance(data, dict) else None
    if explanation is not None and not isinstance(explanation, dict):
        raise ValidationFailed("bid response's explain must be an object", ["explain"])
    return explanation


def _read_bid(body: bytes) -> BidResult:
    """bid's 200 answer to one slot; explained, it may hold no ad (then no fill, explained)."""
    data = _json(body)
    explanation = _explanation(data)
    if explanation is not None and "bidPrice" not in data:
        return BidResult(no_fill=NoFillReason.NO_BID, explanation=explanation)
    return BidResult(*_bid_answer(data), explanation=explanation)


def _read_slots(body: bytes) -> SlotsResult:
    data = _json(body)
    explanation = _explanation(data)
    return SlotsResult(_slots_answer(data), explanation=explanation)


def _bid_answer(data: Any) -> tuple[BidResponse, str]:
    if not isinstance(data, dict) or "bidPrice" not in data:
        raise ValidationFailed("bid response must be an object with bidPrice", ["body"])
    impression_id = data.pop("impressionId", None)
    if not isinstance(impression_id, str) or not _IMPRESSION_ID.fullmatch(impression_id):
        raise ValidationFailed("bid response has no valid impressionId", ["impressionId"])
    fields = {key: value for key, value in data.items() if key != "bidPrice"}
    fields["bidCpmMicros"] = parse_micros(data["bidPrice"], field="bidPrice", allow_zero=False)
    if isinstance(fields.get("confidence"), Decimal):
        fields["confidence"] = float(fields["confidence"])
    return parse(BidResponse, fields), impression_id


def parse_slots_answer(body: bytes | str) -> dict[str, list[tuple[BidResponse, str]]]:
    """bid's 200 body for several slots, each winner read as by `parse_bid_answer`."""
    return _slots_answer(_json(body))


def _slots_answer(data: Any) -> dict[str, list[tuple[BidResponse, str]]]:
    slots = data.get("slots") if isinstance(data, dict) else None
    if not isinstance(slots, dict) or not all(isinstance(v, list) for v in slots.values()):
        raise ValidationFailed("bid response must be an object with slots", ["body"])
    return {name: [_bid_answer(item) for item in won] for name, won in slots.items()}


@dataclass(frozen=True, slots=True)
class ClickSigner:
    """serve's click URLs: `click_tracking_url` with its base URL, key and lifetime set once;
    called as ``(bid, impression id, placementId, userId, serve's request id)``."""

    base_url: str
    key: bytes
    ttl_s: int

    def __call__(
        self, bid: BidResponse, impression_id: str, placement_id: str, user_id: str, request_id: str
    ) -> str:
        return click_tracking_url(
            self.base_url,
            self.key,
            impression_id=impression_id,
            bid=bid,
            user_id=user_id,
            placement_id=placement_id,
            expires_at=int(time.time()) + self.ttl_s,
            request_id=request_id,
        )


def click_tracking_url(
    base_url: str,
    key: bytes,
    *,
    impression_id: str,
    bid: BidResponse,
    user_id: str,
    placement_id: str,
    expires_at: int,
    request_id: str | None = None,
) -> str:
    """`base_url` with ``t=<signed token>`` binding the impression, ad, campaign, user,
    placement, expiry and (when given) serve's request id, the ad's correlation id.

    >>> click_tracking_url("https://ads.example.com/click", b"k" * 32, impression_id="i-1",
    ...     bid=bid, user_id="u-1", placement_id="p-1", expires_at=1_900_000_000)  # doctest: +SKIP
    'https://ads.example.com/click?t=v1.eyJhZCI6...'
    """
    claims = ClickClaims(
        impression_id, bid.ad_id, bid.campaign_id, user_id, placement_id, expires_at, request_id
    )
    separator = "&" if urlsplit(base_url).query else "?"
    return f"{base_url}{separator}t={sign(key, claims)}"


def ad_response(bid: BidResponse, impression_id: str, click_url: str) -> dict[str, Any]:
    """GET /serve's 200 body, in the specification's shape (bidPrice is the winner's CPM,
    decimal)."""
    return {
        "adId": bid.ad_id,
        "campaignId": bid.campaign_id,
        "title": bid.ad_content.title,
        "imageUrl": bid.ad_content.image_url,
        "redirectUrl": bid.ad_content.redirect_url,
        "clickTrackingUrl": click_url,
        "bidPrice": to_json_number(bid.bid_cpm_micros),
        "impressionId": impression_id,
    }
