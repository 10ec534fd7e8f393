"""Pacing and frequency caps in the real charge script (Redis), with an injected clock.

- A simulated day with steady traffic through `Bidder` (the bid function's use case): an even
  campaign's spend stays within 5% of its ideal curve at every hour and ends within 2% of its
  daily budget without crossing it; a frontloaded one follows its curve; an asap one spends
  first.
- 4 processes bidding at once never take an even campaign past its curve (nor its budget).
- 8 processes bidding for one user never exceed the frequency cap; other users are unaffected.

The two multi-process tests run twice: on this module's own redis-server (conftest.redis_server,
flushed per test) and on the test platform's 3-master Redis Cluster (16 shards; campaign ids
of their own per run there, so nothing needs flushing).
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from shared_layer.bidding.domain.auction import build_index
from shared_layer.bidding.domain.budget import ChargeOutcome
from shared_layer.bidding.domain.pacing import expected_spend
from shared_layer.bidding.service.bidder import Bidder
from shared_layer.bidding.store.budget_ledger import (
    RedisBudgetLedger,
    daily_spent_key,
    frequency_key,
    ledger_ready_key,
)
from shared_layer.kernel.models import BidRequest, Campaign, FrequencyCap
from shared_layer.kernel.storage.redis_connection import key_layout
from shared_layer.kernel.storage.shards import SINGLE, Shards

from .budget_ledger_support import (
    FixedClock,
    RedisServer,
    empty_ledger,
    frequency_worker,
    ledger_campaign,
    ledger_client,
    process_worker,
)
from .redis_layouts import CLUSTER_URL, LAYOUTS, layout_client

DAY = datetime(2026, 12, 3, tzinfo=UTC)
REQUEST_EVERY_S = 5


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = empty_ledger(redis_server)
    yield connection
    connection.close()


campaign = ledger_campaign


class _Snapshot:
    """The part of CampaignSnapshot the Bidder reads: a fixed index, no floors."""

    def __init__(self, campaigns: list[Campaign]) -> None:
        self.index = build_index(campaigns)
        self.floors: dict[str, object] = {}

    def ready(self) -> bool:
        return True


@dataclass(frozen=True)
class _Where:
    target: int | str  # what the worker processes connect to (a port, or the cluster's URL)
    client: Any
    shards: Shards
    suffix: str  # after the campaign ids: unique per run on the shared cluster


class _NoRecovery:
    def ensure(self) -> None:  # the ledger is complete here
        raise AssertionError("the ledger was found not ready")


def test_a_simulated_day_even_follows_its_curve_frontloaded_its_own_and_asap_spends_first(
    client: redis.Redis,
) -> None:
    # 1,000 impressions each; traffic (17,280 requests) could buy all of them in 1.5 hours.
    even = campaign("c-even", 2_000_000, 2_000_000, pacing="even")
    front = campaign("c-front", 1_900_000, 1_900_000, pacing="frontloaded")
    asap = campaign("c-asap", 1_000_000, 1_000_000)
    clock = FixedClock(DAY)
    ledger = RedisBudgetLedger(client, clock)
    bidder = Bidder(_Snapshot([even, front, asap]), ledger, _NoRecovery(), clock=clock)  # type: ignore[arg-type]
    spent_at_hour: dict[int, dict[str, int]] = {}
    for step in range(0, 24 * 3600 // REQUEST_EVERY_S):
        seconds = step * REQUEST_EVERY_S
        if seconds % 3600 == 0:
            spent_at_hour[seconds // 3600] = {
                c.id: ledger.spent(c.id, DAY.date())[0] for c in (even, front, asap)
            }
        clock.now = DAY + timedelta(seconds=seconds)
        bidder.bid(BidRequest(user_id=f"user-{step % 5000}", placement_id="p-1"))
    spent_at_hour[24] = {c.id: ledger.spent(c.id, DAY.date())[0] for c in (even, front, asap)}

    for hour in range(1, 25):
        moment = DAY + timedelta(hours=hour) - timedelta(microseconds=1)
        for paced in (even, front):
            ideal = expected_spend(paced, moment)
            spent = spent_at_hour[hour][paced.id]
            assert abs(spent - ideal) <= 0.05 * ideal, (paced.id, hour, spent, ideal)
            assert spent <= paced.daily_budget_micros
    assert spent_at_hour[24]["c-even"] >= 0.98 * even.daily_budget_micros
    assert spent_at_hour[24]["c-front"] >= 0.98 * front.daily_budget_micros
    # asap: its whole budget in the first two hours, while even had spent a twelfth of its own
    assert spent_at_hour[2]["c-asap"] == asap.daily_budget_micros
    assert spent_at_hour[2]["c-even"] <= even.daily_budget_micros / 12 * 1.05
    # frontloaded spends ahead of even over the day
    for hour in range(1, 24):
        front_share = spent_at_hour[hour]["c-front"] / front.daily_budget_micros
        even_share = spent_at_hour[hour]["c-even"] / even.daily_budget_micros
        assert front_share >= even_share, hour


def _run_processes(target, args_for, count: int, context) -> list[object]:
    results = context.Queue()
    start = context.Barrier(count, timeout=60)
    workers = [
        context.Process(target=target, args=(*args_for(n), start, results)) for n in range(count)
    ]
    for worker in workers:
        worker.start()
    payloads = []
    for _ in workers:
        status, payload = results.get(timeout=120)
        assert status == "ok", payload
        payloads.append(payload)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return payloads


@pytest.fixture(params=LAYOUTS)
def where(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[_Where]:
    """Where the processes charge: this module's redis-server, or the Redis Cluster."""
    if request.param == "one-server":
        connection = ledger_client(redis_server.port)
        connection.flushall()
        connection.set(ledger_ready_key(SINGLE, 0), "test")
        yield _Where(redis_server.port, connection, SINGLE, "")
    else:
        connection = layout_client("cluster", 0)
        shards = key_layout(CLUSTER_URL)
        for shard in shards.all():
            connection.set(ledger_ready_key(shards, shard), "test")
        yield _Where(CLUSTER_URL, connection, shards, f"-{uuid.uuid4().hex[:8]}")
    connection.close()


@pytest.mark.parametrize(
    ("moment", "limit_share"),
    [(DAY + timedelta(hours=12), 0.5), (DAY + timedelta(hours=23, minutes=59, seconds=59), 1.0)],
    ids=["noon", "end-of-day"],
)
def test_four_processes_never_take_an_even_campaign_past_its_curve_or_budget(
    where: _Where, moment: datetime, limit_share: float
) -> None:
    paced = [campaign(f"c-{n}{where.suffix}", 2_000_000, 400_000, pacing="even") for n in range(8)]
    price = 2_000
    as_json = [c.model_dump_json() for c in paced]
    context = multiprocessing.get_context("spawn")
    payloads = _run_processes(
        process_worker,
        lambda n: (where.target, as_json, moment.isoformat(), 4, n),
        4,
        context,
    )
    for c in paced:
        acknowledged = sum(int(payload[0].get(c.id, 0)) for payload in payloads)  # type: ignore[index]
        stored = int(where.client.get(daily_spent_key(c.id, DAY.date(), where.shards)) or 0)
        assert stored == acknowledged * price  # every charge acknowledged, none lost or extra
        # the curve plus one impression's slack, never the budget: exactly where it stops
        allowed = min(c.daily_budget_micros, expected_spend(c, moment) + price)
        assert stored <= allowed
        assert stored > allowed - price
        assert round(stored / c.daily_budget_micros, 2) <= limit_share + 0.01


def test_eight_processes_never_exceed_a_frequency_cap_and_other_users_are_unaffected(
    where: _Where,
) -> None:
    capped = campaign(
        f"c-capped{where.suffix}",
        2_000_000,
        100_000_000,
        frequency_cap=FrequencyCap(impressions=3, window_seconds=24 * 3600),
    )
    context = multiprocessing.get_context("spawn")
    payloads = _run_processes(
        frequency_worker,
        lambda n: (where.target, capped.model_dump_json(), DAY.isoformat(), n),
        8,
        context,
    )
    assert sum(hot for hot, _ in payloads) == 3  # type: ignore[misc]
    assert where.client.zcard(frequency_key(capped.id, "hot-user", where.shards)) == 3
    for _hot, others in payloads:  # type: ignore[misc]
        assert all(others.values()) and len(others) == 5
    spent = where.client.get(daily_spent_key(capped.id, DAY.date(), where.shards))
    assert int(spent) == (3 + 8 * 5) * 2_000


def test_the_frequency_window_slides_and_a_capped_campaign_yields_to_the_next(
    client: redis.Redis,
) -> None:
    cap = FrequencyCap(impressions=2, window_seconds=3600)
    capped = campaign("c-capped", 5_000_000, 100_000_000, frequency_cap=cap)
    other = campaign("c-other", 1_000_000, 100_000_000)
    clock = FixedClock(DAY)
    ledger = RedisBudgetLedger(client, clock)
    bidder = Bidder(_Snapshot([capped, other]), ledger, _NoRecovery(), clock=clock)  # type: ignore[arg-type]

    def winner_at(seconds: int, user: str = "u-1") -> str | None:
        clock.now = DAY + timedelta(seconds=seconds)
        decision = bidder.bid(BidRequest(user_id=user, placement_id="p-1")).decision
        return None if decision is None else decision.campaign.id

    assert [winner_at(0), winner_at(10)] == ["c-capped", "c-capped"]
    assert winner_at(20) == "c-other"  # capped for u-1: the next campaign wins
    assert winner_at(20, "u-2") == "c-capped"  # another user is not capped
    assert winner_at(3_601) == "c-capped"  # the first impression left the window
    assert winner_at(3_605) == "c-other"  # the second is still in it
    assert winner_at(3_611) == "c-capped"
    result = ledger.charge(capped, 5_000, user_id="u-1")
    assert result.outcome is ChargeOutcome.FREQUENCY_CAPPED
