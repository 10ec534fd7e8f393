"""The click use case against the test platform's real Redis and PostgreSQL.

Proven: concurrent repeats of one click (threads, one shared tracker as in a replica) count it
exactly once, with one outbox entry that parses as the impression's click event, topic
`clicks`, keyed by campaign; forged, tampered, expired and disagreeing clicks write nothing; a
failing append leaves no dedupe key behind (nothing half-written); the registered URL comes
from the campaign cache, else PostgreSQL, also for removed ads and paused or ended campaigns,
and only within the token's campaign; with Redis away a GET still finds its URL (uncounted) and
a POST is a 503.

Isolation: each test records into its own outbox stream (the platform's relays read only
`events::outbox`), and the campaign cache used here is Redis database CLICK_CACHE_DB, not the
platform's 0. The campaigns made here target a placement no auction asks for and are ended at
teardown.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from localplatform.profile import PROFILES
from shared_layer.campaigns.store.ad_urls import RegisteredAdUrls
from shared_layer.campaigns.store.cache import CampaignCache, entry_key
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.clicks.domain.clicks import (
    DEDUPE_MARGIN_S,
    ClickOutcome,
    click_event,
    parse_click_request,
)
from shared_layer.clicks.domain.clicktoken import ClickClaims, sign
from shared_layer.clicks.service.tracker import ClickTracker
from shared_layer.clicks.store.click_ledger import RedisClickRecorder, seen_key
from shared_layer.kernel.errors import (
    InvalidToken,
    NotFound,
    TokenExpired,
    UpstreamFailed,
    UpstreamUnavailable,
    ValidationFailed,
)
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.domain.events import click_event_id, parse_event
from tests.support import free_port

from .campaign_support import campaign, new_id

KEY = b"integration-click-key-0123456789abcdef"
CLICK_CACHE_DB = 8
LANDING = ("https://advertiser.example/one?src=it", "https://advertiser.example/two")


def ad(title: str, url: str) -> dict[str, str]:
    return {"title": title, "imageUrl": "https://cdn.example.com/i.png", "redirectUrl": url}


@pytest.fixture(scope="module")
def store(db: Database) -> CampaignStore:
    return CampaignStore(db)


@pytest.fixture(scope="module")
def stored(store: CampaignStore) -> Campaign:
    """A campaign with two ads in PostgreSQL (not in the click cache); ads are ordered by id."""
    made = campaign(new_id(), ads=[ad("one", LANDING[0]), ad("two", LANDING[1])])
    return store.create(made).campaign


def _redis(db: int) -> redis.Redis:
    url = os.environ.get("REDIS_URL", PROFILES["test"].host_env()["REDIS_URL"])
    return redis.Redis.from_url(url, db=db, socket_timeout=5)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """The platform's Redis, database 0, where the dedupe keys live."""
    connection = _redis(0)
    yield connection
    connection.close()


@pytest.fixture
def cache_client() -> Iterator[redis.Redis]:
    connection = _redis(CLICK_CACHE_DB)
    yield connection
    connection.close()


@pytest.fixture
def stream(client: redis.Redis) -> Iterator[str]:
    name = outbox_stream(SINGLE, 0, f"test::click-outbox::{uuid.uuid4().hex[:8]}")
    yield name
    client.delete(name)


@pytest.fixture
def tracker(db, client, cache_client, stream) -> ClickTracker:
    directory = RegisteredAdUrls(CampaignCache(cache_client), db)
    return ClickTracker(KEY, directory, recorder_on(client, stream))


def recorder_on(client: redis.Redis, stream: str) -> RedisClickRecorder:
    """A recorder whose (one shard's) outbox stream is `stream`."""
    return RedisClickRecorder(client, outbox_prefix=stream.removesuffix("::" + SINGLE.tag(0)))


def token_for(c: Campaign, ad_index: int = 0, *, expires_in: int = 3_600, **claims) -> tuple:
    fields = {
        "impression_id": str(uuid.uuid4()),
        "ad_id": c.ads[ad_index].id,
        "campaign_id": c.id,
        "user_id": "user-it",
        "placement_id": "placement-it",
        "expires_at": int(time.time()) + expires_in,
        **claims,
    }
    claim = ClickClaims(**fields)
    return claim, sign(KEY, claim)


def redis_away() -> redis.Redis:
    """A client of a Redis that is not there (nothing listens on the port), as click has it."""
    return redis.Redis(
        port=free_port(),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )


def entries(client: redis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(stream)]


def post_body(claims: ClickClaims, token: str, **overrides: str) -> bytes:
    body = {
        "adId": claims.ad_id,
        "campaignId": claims.campaign_id,
        "userId": claims.user_id,
        "token": token,
        **overrides,
    }
    return json.dumps(body).encode()


def test_concurrent_repeats_of_one_click_count_it_once(tracker, client, stream, stored):
    claims, token = token_for(stored)
    start = threading.Barrier(24)

    def click(n: int):
        start.wait()
        if n % 2:
            return tracker.follow(token)
        return tracker.submit(parse_click_request(post_body(claims, token)))

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(click, range(24)))
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == [ClickOutcome.COUNTED] + [ClickOutcome.REPEAT] * 23
    assert {r.redirect_url for r in results} == {stored.ads[0].redirect_url}
    (recorded,) = entries(client, stream)
    assert recorded[b"topic"] == b"clicks" and recorded[b"key"] == stored.id.encode()
    event = parse_event(recorded[b"value"])
    assert event.event_type == "click" and event.event_id == click_event_id(claims.impression_id)
    assert (event.impression_id, event.campaign_id, event.ad_id) == (
        claims.impression_id,
        stored.id,
        stored.ads[0].id,
    )
    assert (event.user_id, event.placement_id, event.price_micros) == ("user-it", "placement-it", 0)
    ttl = client.ttl(seen_key(claims.impression_id, claims.campaign_id))
    assert 3_600 + DEDUPE_MARGIN_S - 10 <= ttl <= 3_600 + DEDUPE_MARGIN_S


def test_every_impression_counts_once_among_many(tracker, client, stream, stored):
    tokens = [token_for(stored, n % 2) for n in range(30)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda ct: tracker.follow(ct[1]), tokens * 3))
    assert sum(r.counted for r in results) == 30
    events = [parse_event(fields[b"value"]) for fields in entries(client, stream)]
    assert sorted(e.impression_id for e in events) == sorted(c.impression_id for c, _ in tokens)
    assert {r.redirect_url for r in results} == set(LANDING)


def test_refused_clicks_write_nothing(tracker, client, stream, stored):
    claims, token = token_for(stored)
    expired_claims, expired = token_for(stored, expires_in=-1)
    forged = sign(b"not our key, but thirty-two bytes long", claims)
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad, error in ((forged, InvalidToken), (tampered, InvalidToken), (expired, TokenExpired)):
        with pytest.raises(error):
            tracker.follow(bad)
    with pytest.raises(ValidationFailed):
        tracker.submit(parse_click_request(post_body(claims, token, userId="someone-else")))
    assert client.exists(stream, seen_key(claims.impression_id, claims.campaign_id)) == 0
    assert client.exists(seen_key(expired_claims.impression_id, expired_claims.campaign_id)) == 0


def test_a_failing_append_leaves_no_dedupe_key(tracker, client, stream, stored):
    claims, token = token_for(stored)
    client.set(stream, "not a stream")  # XADD fails with WRONGTYPE inside the script
    result = tracker.follow(token)
    assert (
        result.outcome is ClickOutcome.UNRECORDED
        and result.redirect_url == stored.ads[0].redirect_url
    )
    assert client.exists(seen_key(claims.impression_id, claims.campaign_id)) == 0
    client.delete(stream)
    assert tracker.follow(token).outcome is ClickOutcome.COUNTED  # the click still counts
    assert len(entries(client, stream)) == 1


def test_the_url_comes_from_the_cache_first_then_postgresql(db, store, cache_client, stored):
    directory = RegisteredAdUrls(CampaignCache(cache_client), db)
    cache_client.delete(entry_key(stored.id))
    assert (
        directory.redirect_url(stored.id, stored.ads[1].id) == stored.ads[1].redirect_url
    )  # PostgreSQL
    cached_url = "https://advertiser.example/cached"
    moved = stored.ads[1].model_copy(update={"redirect_url": cached_url})
    CampaignCache(cache_client).fill([stored.model_copy(update={"ads": (stored.ads[0], moved)})])
    try:
        assert directory.redirect_url(stored.id, stored.ads[1].id) == cached_url
    finally:
        cache_client.delete(entry_key(stored.id))


def test_removed_ads_and_paused_or_ended_campaigns_still_land(db, store, cache_client):
    made = store.create(
        campaign(new_id(), ads=[ad("kept", LANDING[0]), ad("dropped", LANDING[1])])
    ).campaign
    kept, dropped = made.ads
    directory = RegisteredAdUrls(CampaignCache(cache_client), db)
    replaced = made.model_copy(update={"ads": (kept,)})
    store.replace(replaced, keep_status=True)
    CampaignCache(cache_client).fill([replaced])  # the cache knows only the kept ad now
    try:
        assert directory.redirect_url(made.id, dropped.id) == dropped.redirect_url
        store.set_status(made.id, "paused")
        assert directory.redirect_url(made.id, kept.id) == kept.redirect_url
        store.delete(made.id)
        cache_client.delete(entry_key(made.id))
        assert directory.redirect_url(made.id, kept.id) == kept.redirect_url
        assert directory.redirect_url(made.id, dropped.id) == dropped.redirect_url
    finally:
        cache_client.delete(entry_key(made.id))


def test_an_ad_only_lands_within_its_own_campaign(db, store, cache_client, client, stream, stored):
    other = store.create(campaign(new_id(), ads=[ad("other", LANDING[1])])).campaign
    directory = RegisteredAdUrls(CampaignCache(cache_client), db)
    assert directory.redirect_url(other.id, stored.ads[0].id) is None
    assert directory.redirect_url(stored.id, other.ads[0].id) is None
    assert directory.redirect_url(new_id(), new_id()) is None
    assert directory.redirect_url("not-a-uuid", "nor-this") is None
    # A genuine token whose ad is not in its campaign: 404, nothing counted.
    tracker = ClickTracker(KEY, directory, recorder_on(client, stream))
    claims, token = token_for(stored, campaign_id=other.id)
    with pytest.raises(NotFound):
        tracker.follow(token)
    assert client.exists(stream, seen_key(claims.impression_id, claims.campaign_id)) == 0


def test_with_redis_away_a_get_still_redirects_and_a_post_is_a_503(db, stored):
    away = redis_away()
    tracker = ClickTracker(KEY, RegisteredAdUrls(CampaignCache(away), db), RedisClickRecorder(away))
    claims, token = token_for(stored)
    result = tracker.follow(token)
    assert (result.outcome, result.redirect_url) == (
        ClickOutcome.UNRECORDED,
        stored.ads[0].redirect_url,
    )
    with pytest.raises(UpstreamUnavailable):
        tracker.submit(parse_click_request(post_body(claims, token)))


def test_with_redis_and_postgresql_away_a_click_is_a_503(stored):
    away = redis_away()
    no_db = Database.from_url(f"postgresql://adserver@127.0.0.1:{free_port()}/adserver")
    tracker = ClickTracker(
        KEY, RegisteredAdUrls(CampaignCache(away), no_db), RedisClickRecorder(away)
    )
    with pytest.raises(UpstreamUnavailable):
        tracker.follow(token_for(stored)[1])


def test_redis_refusing_the_script_is_an_upstream_failure(client, stream, stored):
    recorder = recorder_on(client, stream)
    claims, _ = token_for(stored)
    client.set(stream, "x")  # WRONGTYPE for XADD: Redis answers with an error
    event = click_event(claims, at=datetime.now(UTC))
    with pytest.raises(UpstreamFailed):
        recorder.record(event, 60)
