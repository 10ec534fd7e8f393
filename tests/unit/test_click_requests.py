"""The click use case without a network: request parsing, agreement with the token, the event,
the dedupe TTL, the Location header, and the tracker's decisions over in-memory seams.

The seams (`RedirectDirectory`, `ClickRecorder`) are our own one-method contracts; their Redis
and PostgreSQL implementations are proven in tests/integration/test_click_recording.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from shared_layer.clicks.domain.clicks import (
    CLICK_OUTCOMES,
    DEDUPE_MARGIN_S,
    ClickOutcome,
    check_agreement,
    click_event,
    dedupe_ttl_s,
    error_outcome,
    location_header,
    parse_click_request,
    token_from_query,
)
from shared_layer.clicks.domain.clicktoken import ClickClaims, sign
from shared_layer.clicks.service.tracker import ClickTracker
from shared_layer.clicks.store.click_ledger import seen_key
from shared_layer.kernel.errors import (
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    TokenExpired,
    UpstreamFailed,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared_layer.pipeline.domain.events import click_event_id, parse_event

KEY = b"0123456789abcdef0123456789abcdef"
NOW = 1_764_426_645.25
IMPRESSION, CAMPAIGN, AD = (str(uuid.uuid4()) for _ in range(3))
CLAIMS = ClickClaims(IMPRESSION, AD, CAMPAIGN, "user-123", "placement-001", int(NOW) + 3_600)
TOKEN = sign(KEY, CLAIMS)
LANDING = "https://advertiser.example/landing?c=1"


def body(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "adId": AD,
        "campaignId": CAMPAIGN,
        "userId": "user-123",
        "timestamp": "2025-11-29T14:30:45.123Z",
        "token": TOKEN,
    }
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


# --- GET's token ---


def test_the_token_is_the_t_parameter_and_every_other_parameter_is_ignored() -> None:
    query = {"t": TOKEN, "url": "https://evil.example", "redirect": "//evil.example"}
    assert token_from_query(query) == TOKEN


@pytest.mark.parametrize("query", [{}, {"t": ""}, {"token": TOKEN}])
def test_a_missing_token_is_a_400_naming_t(query: dict[str, str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        token_from_query(query)
    assert caught.value.status == 400 and caught.value.fields == ("t",)


# --- POST's body ---


def test_the_seed_json_with_a_token_parses() -> None:
    request = parse_click_request(body())
    assert (request.ad_id, request.campaign_id, request.user_id) == (AD, CAMPAIGN, "user-123")
    assert request.click_token == TOKEN


def test_t_is_accepted_instead_of_token_and_the_timestamp_is_optional() -> None:
    request = parse_click_request(body(token=None, t=TOKEN, timestamp=None))
    assert request.click_token == TOKEN and request.timestamp is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (body(token=None), "token"),
        (body(t=TOKEN), "token"),
        (body(adId=None), "adId"),
        (body(campaignId=None), "campaignId"),
        (body(userId=None), "userId"),
        (body(adId=7), "adId"),
        (body(userId=""), "userId"),
        (body(userId="u" * 129), "userId"),
        (body(userId="u\x00"), "userId"),
        (body(token=""), "token"),
        (body(token=12), "token"),
        (body(timestamp="2025-11-29T14:30:45"), "timestamp"),
        (body(timestamp="yesterday"), "timestamp"),
        (body(timestamp=1764426645), "timestamp"),
        (body(redirectUrl="https://evil.example"), "redirectUrl"),
        (b"[]", "body"),
        (b"not json", "body"),
        (b"\xff\xfe", "body"),
        (b"", "body"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(raw: bytes, named: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_click_request(raw)
    assert caught.value.status == 400
    assert named in caught.value.message, caught.value.message


def test_a_body_over_16_kib_is_a_413() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_click_request(body(userId="u", padding=None) + b" " * 16_384)


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"adId": str(uuid.uuid4())}, ("adId",)),
        ({"campaignId": str(uuid.uuid4())}, ("campaignId",)),
        ({"userId": "user-124"}, ("userId",)),
        ({"adId": AD.upper()}, ("adId",)),
        ({"userId": "someone", "adId": "x"}, ("adId", "userId")),
    ],
)
def test_a_body_that_disagrees_with_its_token_is_a_400(overrides, fields) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_agreement(parse_click_request(body(**overrides)), CLAIMS)
    assert caught.value.fields == fields


def test_a_body_that_agrees_passes() -> None:
    check_agreement(parse_click_request(body()), CLAIMS)


# --- the event and its dedupe key ---


def test_the_click_event_is_the_seed_schema_for_the_tokens_impression() -> None:
    at = datetime(2025, 11, 29, 14, 30, 45, 123_000, tzinfo=UTC)
    event = click_event(CLAIMS, at)
    assert event.topic == "clicks" and event.key == CAMPAIGN.encode()
    assert event.event_id == click_event_id(IMPRESSION) != IMPRESSION
    assert json.loads(event.to_bytes()) == {
        "eventId": click_event_id(IMPRESSION),
        "timestamp": "2025-11-29T14:30:45.123Z",
        "eventType": "click",
        "userId": "user-123",
        "campaignId": CAMPAIGN,
        "adId": AD,
        "placementId": "placement-001",
        "bidPrice": 0,
        "impressionId": IMPRESSION,
        "priceMicros": 0,
    }
    assert parse_event(event.to_bytes()) == event


def test_the_seen_key_names_the_impression_in_its_campaigns_shard() -> None:
    assert seen_key(IMPRESSION, "c-1") == f"click::seen::{{shard0of1}}::{IMPRESSION}"


@pytest.mark.parametrize(
    ("expires_in", "ttl"),
    [(3_600, 3_600), (0.25, 1), (0, 0), (-10, 0), (86_400, 86_400)],
)
def test_the_dedupe_key_outlives_the_token(expires_in: float, ttl: int) -> None:
    claims = ClickClaims("i", "a", "c", "u", "p", expires_at=1_000_000)
    assert dedupe_ttl_s(claims, now=1_000_000 - expires_in) == ttl + DEDUPE_MARGIN_S


# --- the Location header ---


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (LANDING, LANDING),
        ("http://example.com", "http://example.com"),
        ("https://example.com:8443/a%20b?x=1&y=%2F#top", "https://example.com:8443/a%20b?x=1&y=%2F#top"),
        ("https://bücher.example/straße?q=ä", "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4"),
        ("https://user@bücher.example:81/", "https://user@xn--bcher-kva.example:81/"),
        ("https://example.com/a\"b<c>", "https://example.com/a%22b%3Cc%3E"),
    ],
)  # fmt: skip
def test_the_location_is_the_registered_url_in_ascii(url: str, location: str) -> None:
    assert location_header(url) == location


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "//evil.example/",
        "/relative",
        "ftp://example.com/",
        "https://example.com/\r\nSet-Cookie: x=1",
        "https://example.com/a b",
        "https:///no-host",
        "https://bücher.example:99999/",
    ],
)
def test_a_url_that_is_not_absolute_http_never_becomes_a_location(url: str) -> None:
    with pytest.raises(UpstreamFailed):
        location_header(url)


# --- the tracker over in-memory seams ---


@dataclass
class Directory:
    urls: dict[tuple[str, str], str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def redirect_url(self, campaign_id: str, ad_id: str) -> str | None:
        self.asked.append((campaign_id, ad_id))
        return self.urls.get((campaign_id, ad_id))


@dataclass
class Recorder:
    seen: dict[str, int] = field(default_factory=dict)
    events: list = field(default_factory=list)
    correlations: list = field(default_factory=list)
    failure: Exception | None = None

    def record(self, event, ttl_s: int, correlation=None) -> bool:
        if self.failure is not None:
            raise self.failure
        if event.impression_id in self.seen:
            return False
        self.seen[event.impression_id] = ttl_s
        self.events.append(event)
        self.correlations.append(correlation)
        return True


def tracker(recorder: Recorder | None = None) -> tuple[ClickTracker, Directory, Recorder]:
    directory = Directory({(CAMPAIGN, AD): LANDING})
    recorder = recorder or Recorder()
    return ClickTracker(KEY, directory, recorder, clock=lambda: NOW), directory, recorder


def test_a_click_is_counted_once_and_always_redirected() -> None:
    clicks, _, recorder = tracker()
    first, again = clicks.follow(TOKEN), clicks.follow(TOKEN)
    assert (first.redirect_url, first.outcome) == (LANDING, ClickOutcome.COUNTED)
    assert (again.redirect_url, again.outcome) == (LANDING, ClickOutcome.REPEAT)
    assert first.counted and not again.counted
    assert [e.event_id for e in recorder.events] == [click_event_id(IMPRESSION)]
    assert recorder.events[0].timestamp == datetime.fromtimestamp(NOW, UTC)  # ours, not theirs
    assert recorder.seen[IMPRESSION] == CLAIMS.expires_at - int(NOW) + DEDUPE_MARGIN_S


def test_a_post_counts_once_too() -> None:
    clicks, _, recorder = tracker()
    assert clicks.submit(parse_click_request(body())).outcome is ClickOutcome.COUNTED
    assert clicks.submit(parse_click_request(body())).outcome is ClickOutcome.REPEAT
    assert clicks.follow(TOKEN).outcome is ClickOutcome.REPEAT
    assert len(recorder.events) == 1


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (sign(b"another key of thirty-two bytes!", CLAIMS), InvalidToken),
        (TOKEN[:-2] + ("AA" if not TOKEN.endswith("AA") else "BB"), InvalidToken),
        (sign(KEY, ClickClaims(IMPRESSION, AD, CAMPAIGN, "u", "p", int(NOW))), TokenExpired),
        ("v1.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", InvalidToken),
    ],
)
def test_refused_tokens_read_and_write_nothing(token: str, error: type[Exception]) -> None:
    clicks, directory, recorder = tracker()
    with pytest.raises(error):
        clicks.follow(token)
    with pytest.raises(error):
        clicks.submit(parse_click_request(body(token=token)))
    assert directory.asked == [] and recorder.events == []


def test_a_post_that_disagrees_with_its_token_records_nothing() -> None:
    clicks, directory, recorder = tracker()
    with pytest.raises(ValidationFailed):
        clicks.submit(parse_click_request(body(userId="someone-else")))
    assert directory.asked == [] and recorder.events == []


def test_an_ad_that_is_not_in_the_tokens_campaign_is_a_404_and_not_counted() -> None:
    clicks, directory, recorder = tracker()
    directory.urls = {(str(uuid.uuid4()), AD): LANDING}
    with pytest.raises(NotFound):
        clicks.follow(TOKEN)
    assert recorder.events == []


def test_redis_down_still_redirects_a_get_uncounted_and_fails_a_post() -> None:
    clicks, _, _ = tracker(Recorder(failure=UpstreamUnavailable("redis away")))
    result = clicks.follow(TOKEN)
    assert (result.redirect_url, result.outcome) == (LANDING, ClickOutcome.UNRECORDED)
    assert not result.counted
    with pytest.raises(UpstreamUnavailable):
        clicks.submit(parse_click_request(body()))


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InvalidToken("x"), "invalid"),
        (ValidationFailed("x"), "invalid"),
        (PayloadTooLarge("x"), "invalid"),
        (TokenExpired("x"), "expired"),
        (NotFound("x"), "not-found"),
        (UpstreamUnavailable("x"), "error"),
        (KeyError("x"), "error"),
    ],
)
def test_refusals_are_counted_by_reason(error: Exception, outcome: str) -> None:
    assert error_outcome(error) == outcome and outcome in CLICK_OUTCOMES
