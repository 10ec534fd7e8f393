"""The bid handler in process against the platform's real Redis: the charge, the UTC day
boundary of daily budgets (injectable clock), the refusal memo, and Redis failures as 503.

The handler is built from the function's module with the test's settings and clock; its
bidder's campaign snapshot is then a fixed index of campaigns made here (with ids of their own),
so the test controls exactly which campaigns exist while every charge still runs the Lua script
in Redis.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from localplatform.profile import PROFILES, REPO_ROOT
from shared_layer.bidding.domain.auction import build_index
from shared_layer.bidding.domain.deadline import deadline_header
from shared_layer.bidding.store.budget_ledger import (
    RedisBudgetLedger,
    daily_spent_key,
    lifetime_spent_key,
)
from shared_layer.composition.bidder import BidderSettings, start_bidder
from shared_layer.kernel.models import Ad, Campaign, TargetingRule
from shared_layer.kernel.settings import load_settings

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]


class FixedSnapshot:
    def __init__(self, campaigns: list[Campaign]) -> None:
        self.index = build_index(campaigns)
        self.floors: dict[str, object] = {}  # no placement floors

    def ready(self) -> bool:
        return True


class Clock:
    """The real time until a test sets `now`."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@pytest.fixture(scope="module")
def bid():
    """The bid function's handler, built as the function builds it, over this platform and a
    clock of the test's; its snapshot's refresher and its relay stopped (the test reads the
    outbox itself)."""
    settings = load_settings(
        BidderSettings, environ=PROFILE.host_env(), secrets_dir=PROFILE.secrets_dir
    )
    spec = importlib.util.spec_from_file_location(
        "bid_handler_under_test", REPO_ROOT / "functions" / "bid" / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    clock = Clock()
    runtime = start_bidder(settings, clock=clock)
    runtime.snapshot.stop()
    runtime.relay.stop()
    yield SimpleNamespace(
        handle=module.serve_bids(runtime.bidder), bidder=runtime.bidder, clock=clock
    )


@pytest.fixture
def clock(bid):
    bid.clock.now = datetime(2030, 1, 1, 23, 59, 58, tzinfo=UTC)
    yield bid.clock
    bid.clock.now = None


def campaign(cpm_micros: int, daily: int, lifetime: int | None = None, **extra) -> Campaign:
    campaign_id = f"it-{uuid.uuid4()}"
    return Campaign(
        id=campaign_id,
        advertiser_id="adv-1",
        name="integration",
        status="active",
        cpm_micros=cpm_micros,
        daily_budget_micros=daily,
        lifetime_budget_micros=lifetime,
        targeting_rules=(TargetingRule(rule_type="placement", rule_value="it-placement"),),
        ads=(
            Ad(
                id=f"ad-{campaign_id}",
                campaign_id=campaign_id,
                title="T",
                image_url="https://x.test/i.png",
                redirect_url="https://x.test/",
            ),
        ),
        **extra,
    )


def post(bid, body: object, headers: dict[str, str] | None = None) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event = SimpleNamespace(method="POST", path="/", body=raw, headers=headers or {}, query={})
    return bid.handle(event, None)


REQUEST = {"userId": "u-1", "placementId": "it-placement"}


def winner(response: dict) -> str | None:
    return json.loads(response["body"])["campaignId"] if response["statusCode"] == 200 else None


def test_the_daily_budget_starts_afresh_at_the_utc_day_boundary(bid, clock):
    c = campaign(cpm_micros=1_000_000, daily=2_000, lifetime=5_000)  # 1,000 micros each
    bid.bidder.snapshot = FixedSnapshot([c])
    assert [winner(post(bid, REQUEST)) for _ in range(3)] == [c.id, c.id, None]
    clock.now += timedelta(seconds=2)  # 00:00:00 the next UTC day
    assert [winner(post(bid, REQUEST)) for _ in range(3)] == [c.id, c.id, None]
    clock.now += timedelta(days=1)
    # Lifetime 5,000: one more impression in all, whatever the day.
    assert [winner(post(bid, REQUEST)) for _ in range(2)] == [c.id, None]
    client = redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"])
    days = [datetime(2030, 1, d, tzinfo=UTC).date() for d in (1, 2, 3)]
    assert [int(client.get(daily_spent_key(c.id, d))) for d in days] == [2_000, 2_000, 1_000]
    assert int(client.get(lifetime_spent_key(c.id))) == 5_000


def test_a_spent_campaign_gives_way_to_the_next_one_and_a_raised_budget_wins_again(bid, clock):
    rich, poor = campaign(2_000_000, daily=2_000), campaign(1_000_000, daily=1_000_000)
    bid.bidder.snapshot = FixedSnapshot([rich, poor])
    assert [winner(post(bid, REQUEST)) for _ in range(3)] == [rich.id, poor.id, poor.id]
    raised = rich.model_copy(update={"daily_budget_micros": 4_000})
    bid.bidder.snapshot = FixedSnapshot([raised, poor])  # the admin raised the budget today
    assert winner(post(bid, REQUEST)) == rich.id


def test_the_answer_carries_the_impression_and_its_price(bid, clock):
    c = campaign(cpm_micros=2_500_000, daily=1_000_000)
    bid.bidder.snapshot = FixedSnapshot([c])
    response = post(bid, REQUEST)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["bidPrice"] == 2.5 and body["priceMicros"] == 2_500
    assert uuid.UUID(body["impressionId"]).version == 4


def test_bad_input_charges_nothing(bid, clock):
    c = campaign(cpm_micros=1_000_000, daily=1_000_000)
    bid.bidder.snapshot = FixedSnapshot([c])
    for body in (b"{", {**REQUEST, "extra": 1}, {**REQUEST, "userId": 7}, b"x" * 70_000):
        response = post(bid, body)
        assert response["statusCode"] in (400, 413)
        assert set(json.loads(response["body"])) == {"error", "message", "requestId"}
    client = redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"])
    assert client.get(lifetime_spent_key(c.id)) is None


def test_redis_unreachable_is_a_503_not_a_charge_or_a_crash(bid, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    original = bid.bidder.ledger
    bid.bidder.ledger = RedisBudgetLedger(dead, clock=clock)
    try:
        bid.bidder.snapshot = FixedSnapshot([campaign(1_000_000, daily=1_000_000)])
        response = post(bid, REQUEST)
    finally:
        bid.bidder.ledger = original
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "UPSTREAM_UNAVAILABLE"


def test_a_bid_serve_no_longer_waits_for_is_refused_and_charges_nothing(bid, clock):
    """serve sends the moment it stops waiting; a request that queued past it gets no auction."""
    c = campaign(cpm_micros=1_000_000, daily=1_000_000)
    bid.bidder.snapshot = FixedSnapshot([c])
    late = post(bid, REQUEST, {"X-Bid-Deadline": deadline_header(time.time(), -0.005)})
    assert late["statusCode"] == 204
    assert late["headers"]["X-No-Bid-Reason"] == "deadline-passed"
    client = redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"])
    assert client.get(lifetime_spent_key(c.id)) is None
    in_time = post(bid, REQUEST, {"X-Bid-Deadline": deadline_header(time.time(), 5)})
    assert winner(in_time) == c.id
    assert int(client.get(lifetime_spent_key(c.id))) == 1_000


@pytest.mark.parametrize("value", ["soon", "-5", "1.5e12", "١٢٣", "9" * 16])
def test_a_malformed_deadline_is_a_400_and_charges_nothing(bid, clock, value):
    c = campaign(cpm_micros=1_000_000, daily=1_000_000)
    bid.bidder.snapshot = FixedSnapshot([c])
    response = post(bid, REQUEST, {"X-Bid-Deadline": value})
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert set(body) == {"error", "message", "requestId"} and "X-Bid-Deadline" in body["message"]
    client = redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"])
    assert client.get(lifetime_spent_key(c.id)) is None
