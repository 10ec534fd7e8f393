"""/function/click through the gateway: serve an ad, click it, and see exactly one click event.

A campaign is created through the campaigns API with a redirect URL of its own; serve answers
an ad with its clickTrackingUrl; following it (without following the redirect) must answer 302
to that URL, and count once: the click event reaches Kafka's `clicks` topic through the outbox
relay, once per impression however often the link is followed. Replays still redirect but are
not counted; tampered, forged and expired tokens are a 4xx with the error body and never
counted (and do not use up the impression: its genuine click still counts afterwards); no
parameter of the request can choose the destination; clicks on a paused campaign's ad land
and count; a token whose ad is not in its campaign is a 404.

Counting: an event is either still in the Redis outbox (`events::outbox`) or on Kafka. The
helpers wait until the outbox holds none for the impression (the relay deletes an entry once
Kafka confirmed it), then read the `clicks` topic to its end.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from localplatform import secrets
from shared_layer.clicks.domain.clicktoken import ClickClaims, sign, verify
from shared_layer.clicks.store.click_ledger import seen_key
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.domain.events import CLICKS_TOPIC, AdEvent, click_event_id, parse_event
from tests.e2e.test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    redis_client,
    unique_placement,
)
from tests.support import wait_for

CLICK = f"{GATEWAY}/function/click"
SERVE = f"{GATEWAY}/function/serve"
BROKERS = os.environ.get("KAFKA_BROKERS", PROFILE.host_env()["KAFKA_BROKERS"])
ERROR_KEYS = {"error", "message", "requestId"}


class ClickTopic:
    """The `clicks` topic from where it ended when this module started: events as they come."""

    def __init__(self) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": BROKERS,
                "group.id": f"click-e2e-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
            }
        )
        topic = self._consumer.list_topics(CLICKS_TOPIC, timeout=15).topics[CLICKS_TOPIC]
        self._partitions = sorted(topic.partitions)
        starts = [self._high(p) for p in self._partitions]
        self._consumer.assign(
            [
                TopicPartition(CLICKS_TOPIC, p, o)
                for p, o in zip(self._partitions, starts, strict=True)
            ]
        )
        self._position = dict(zip(self._partitions, starts, strict=True))
        self.events: list[tuple[bytes, AdEvent]] = []

    def _high(self, partition: int) -> int:
        low_high = self._consumer.get_watermark_offsets(
            TopicPartition(CLICKS_TOPIC, partition), timeout=10
        )
        return low_high[1]

    def read_to_end(self, timeout_s: float = 15.0) -> None:
        """Everything written to the topic up to now."""
        ends = {p: self._high(p) for p in self._partitions}
        deadline = time.monotonic() + timeout_s
        while any(self._position[p] < ends[p] for p in self._partitions):
            assert time.monotonic() < deadline, f"clicks topic not read to its end: {ends}"
            for message in self._consumer.consume(500, timeout=0.2):
                if message.error():
                    continue
                self._position[message.partition()] = message.offset() + 1
                self.events.append((message.key(), parse_event(message.value())))

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture(scope="module")
def topic():
    clicks = ClickTopic()
    yield clicks
    clicks.close()


def pending_in_outbox(impression_id: str) -> int:
    entries = redis_client().xrange(outbox_stream(SINGLE, 0), count=100_000)
    return sum(impression_id.encode() in fields.get(b"value", b"") for _, fields in entries)


def counted(topic: ClickTopic, impression_id: str) -> list[tuple[bytes, AdEvent]]:
    """The click events recorded for an impression, once the relay delivered them all."""
    assert wait_for(lambda: pending_in_outbox(impression_id) == 0, 30), "outbox not drained"
    topic.read_to_end()
    return [(key, e) for key, e in topic.events if e.impression_id == impression_id]


def key() -> bytes:
    return secrets.read(PROFILE, "click-signing-key").encode()


def create_campaign(landing: str, label: str) -> tuple[str, str]:
    """(campaign id, placement): one ad sending clicks to `landing`, on a placement of its own,
    bidding far above other suites' campaigns so that its placement's ads are always its own."""
    placement = unique_placement(label)
    body = campaign_body(cpm="20000", daily="100000", rules=[("placement", placement)])
    body["ads"][0]["redirectUrl"] = landing
    return Campaigns().create(body), placement


@pytest.fixture(scope="module")
def advertiser() -> tuple[str, str, str]:
    """(campaign id, placement, the ad's registered URL)."""
    landing = f"https://advertiser.example/landing/{uuid.uuid4().hex[:8]}?utm_source=e2e&x=1"
    campaign_id, placement = create_campaign(landing, "click")
    return campaign_id, placement, landing


def serve_ad(placement: str, user: str | None = None) -> dict:
    user = user or f"clicker-{uuid.uuid4().hex[:8]}"
    r = requests.get(SERVE, params={"userId": user, "placementId": placement}, timeout=10)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    return r.json()


def token_of(ad: dict) -> str:
    return parse_qs(urlsplit(ad["clickTrackingUrl"]).query)["t"][0]


def follow(url: str, **params) -> requests.Response:
    return requests.get(url, params=params or None, allow_redirects=False, timeout=10)


def test_a_click_redirects_to_the_registered_url_and_counts_once(advertiser, topic):
    campaign_id, placement, landing = advertiser
    ad = serve_ad(placement, user="user-e2e-click")
    assert ad["campaignId"] == campaign_id and ad["redirectUrl"] == landing
    first = requests.get(
        ad["clickTrackingUrl"],
        allow_redirects=False,
        headers={"X-Request-Id": "click-e2e-1"},
        timeout=10,
    )
    assert first.status_code == 302, (first.status_code, first.text)
    assert first.headers["Location"] == landing
    assert first.headers["X-Click-Counted"] == "true"
    assert first.headers["Cache-Control"] == "no-store"
    assert first.headers["X-Request-Id"] == "click-e2e-1"
    for _ in range(3):
        again = follow(ad["clickTrackingUrl"])
        assert (again.status_code, again.headers["Location"]) == (302, landing)
        assert again.headers["X-Click-Counted"] == "false"
    assert redis_client().exists(seen_key(ad["impressionId"], ad["campaignId"])) == 1
    ((kafka_key, event),) = counted(topic, ad["impressionId"])
    assert kafka_key == campaign_id.encode()
    assert (event.event_type, event.event_id) == ("click", click_event_id(ad["impressionId"]))
    assert (event.campaign_id, event.ad_id, event.user_id, event.placement_id) == (
        campaign_id,
        ad["adId"],
        "user-e2e-click",
        placement,
    )
    assert event.price_micros == 0
    assert abs((datetime.now(UTC) - event.timestamp).total_seconds()) < 300


def test_concurrent_clicks_on_one_impression_count_once(advertiser, topic):
    _, placement, landing = advertiser
    ad = serve_ad(placement)
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: follow(ad["clickTrackingUrl"]), range(12)))
    assert {(r.status_code, r.headers["Location"]) for r in answers} == {(302, landing)}
    assert sorted(r.headers["X-Click-Counted"] for r in answers) == ["false"] * 11 + ["true"]
    assert len(counted(topic, ad["impressionId"])) == 1


def test_a_posted_click_counts_once_and_must_agree_with_its_token(advertiser, topic):
    campaign_id, placement, landing = advertiser
    ad = serve_ad(placement, user="user-e2e-post")
    body = {
        "adId": ad["adId"],
        "campaignId": campaign_id,
        "userId": "user-e2e-post",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "token": token_of(ad),
    }
    wrong = requests.post(CLICK, json={**body, "userId": "someone-else"}, timeout=10)
    assert wrong.status_code == 400 and set(wrong.json()) == ERROR_KEYS
    assert wrong.json()["error"] == "INVALID_REQUEST" and "userId" in wrong.json()["message"]
    assert redis_client().exists(seen_key(ad["impressionId"], ad["campaignId"])) == 0
    r = requests.post(CLICK, json=body, timeout=10)
    assert (r.status_code, r.text, r.headers["X-Click-Counted"]) == (204, "", "true")
    both = requests.post(CLICK, json={**body, "t": body["token"]}, timeout=10)
    assert both.status_code == 400 and "token" in both.json()["message"]
    as_t = {**{k: v for k, v in body.items() if k != "token"}, "t": body["token"]}
    again = requests.post(CLICK, json=as_t, timeout=10)
    assert (again.status_code, again.headers["X-Click-Counted"]) == (204, "false")
    followed = follow(ad["clickTrackingUrl"])
    assert (followed.status_code, followed.headers["Location"]) == (302, landing)
    assert followed.headers["X-Click-Counted"] == "false"
    assert len(counted(topic, ad["impressionId"])) == 1


def test_no_request_parameter_can_choose_the_destination(advertiser):
    _, placement, landing = advertiser
    ad = serve_ad(placement)
    evil = "https://evil.example/phish"
    r = requests.get(
        f"{ad['clickTrackingUrl']}&url={evil}&redirect={evil}&redirectUrl={evil}&next=//evil.example",
        headers={"Referer": evil},
        allow_redirects=False,
        timeout=10,
    )
    assert (r.status_code, r.headers["Location"]) == (302, landing)
    r = requests.post(CLICK, json={"redirectUrl": evil, "t": token_of(ad)}, timeout=10)
    assert r.status_code == 400 and "Location" not in r.headers


def _tampered(token: str) -> str:
    version, payload, signature = token.split(".")
    flipped = payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:]
    return f"{version}.{flipped}.{signature}"


def _forged(token: str) -> str:
    return sign(b"an attacker's key, 32 bytes long!", verify(key(), token, now=time.time()))


def _expired(token: str) -> str:
    claims = verify(key(), token, now=time.time())
    past = ClickClaims(
        claims.impression_id, claims.ad_id, claims.campaign_id, claims.user_id,
        claims.placement_id, int(time.time()) - 1,
    )  # fmt: skip
    return sign(key(), past)


@pytest.mark.parametrize(
    ("mangle", "status", "code"),
    [
        (_tampered, 400, "INVALID_TOKEN"),
        (_forged, 400, "INVALID_TOKEN"),
        (_expired, 410, "TOKEN_EXPIRED"),
        (lambda t: t[:-1], 400, "INVALID_TOKEN"),
        (lambda t: "", 400, "INVALID_REQUEST"),
    ],
    ids=["tampered", "forged", "expired", "truncated", "missing"],
)
def test_bad_tokens_are_refused_and_never_counted(advertiser, topic, mangle, status, code):
    _, placement, landing = advertiser
    ad = serve_ad(placement)
    bad = mangle(token_of(ad))
    r = follow(CLICK, t=bad) if bad else follow(CLICK)
    assert r.status_code == status, (r.status_code, r.text)
    assert "Location" not in r.headers and "X-Click-Counted" not in r.headers
    assert set(r.json()) == ERROR_KEYS and r.json()["error"] == code
    body = {"adId": ad["adId"], "campaignId": ad["campaignId"], "userId": "u", "token": bad}
    posted = requests.post(CLICK, json=body, timeout=10)
    assert posted.status_code == status and posted.json()["error"] in (code, "INVALID_REQUEST")
    assert redis_client().exists(seen_key(ad["impressionId"], ad["campaignId"])) == 0
    assert counted(topic, ad["impressionId"]) == []
    # The refused attempts did not use the impression up: its genuine click counts.
    genuine = follow(ad["clickTrackingUrl"])
    assert (genuine.status_code, genuine.headers["Location"]) == (302, landing)
    assert genuine.headers["X-Click-Counted"] == "true"
    assert len(counted(topic, ad["impressionId"])) == 1


def test_a_paused_campaigns_ad_still_lands_and_counts_and_ads_stay_in_their_campaign(
    advertiser, topic
):
    landing = f"https://advertiser.example/paused/{uuid.uuid4().hex[:8]}"
    campaign_id, placement = create_campaign(landing, "click-paused")
    ad = serve_ad(placement)
    assert ad["campaignId"] == campaign_id
    Campaigns().pause(campaign_id)
    r = follow(ad["clickTrackingUrl"])
    assert (r.status_code, r.headers["Location"], r.headers["X-Click-Counted"]) == (
        302,
        landing,
        "true",
    )
    assert len(counted(topic, ad["impressionId"])) == 1
    # A genuine signature over an ad of another campaign: nothing to redirect to, nothing counted.
    other_campaign = advertiser[0]
    claims = verify(key(), token_of(ad), now=time.time())
    crossed = ClickClaims(
        str(uuid.uuid4()), claims.ad_id, other_campaign, claims.user_id, claims.placement_id,
        claims.expires_at,
    )  # fmt: skip
    r = follow(CLICK, t=sign(key(), crossed))
    assert r.status_code == 404 and r.json()["error"] == "NOT_FOUND"
    assert redis_client().exists(seen_key(crossed.impression_id, crossed.campaign_id)) == 0


def test_other_methods_are_refused_with_the_error_body():
    r = requests.put(CLICK, data=b"{}", timeout=10)
    assert r.status_code == 405 and set(r.json()) == ERROR_KEYS
