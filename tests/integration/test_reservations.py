"""Reserve, then settle, against a real redis-server: what an exchange's notices do to money.

Eight processes bid on campaigns whose budgets fit a few impressions; a random half of the bids
win at a random clearing price below the bid, with billing notices repeated and win and loss
notices out of order, the others lose with or without a loss notice; one more process reserves
and is SIGKILLed before any notice. Then: no budget was ever overspent, spend is the sum of the
clearing prices of settled wins, one impression event per settled win at its clearing price,
every reservation is settled or released (the window's sweep closes the rest), and the tallies
that reconciliation reads balance.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from shared_layer.bidding.service.settlement import Settlement
from shared_layer.bidding.store.budget_ledger import (
    RedisBudgetLedger,
    daily_spent_key,
    lifetime_spent_key,
)
from shared_layer.bidding.store.reservations import RedisReservations
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.shards import SINGLE
from tests.workers import Workers

from .budget_ledger_support import FixedClock, RedisServer, empty_ledger
from .reservation_support import NOW, campaign, exchange_worker, holding_worker, reserve

DAY = NOW.date()
C1, C2, C3 = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
OUTBOX = outbox_stream(SINGLE, 0)
FAR_FUTURE_MS = int(NOW.timestamp() * 1000) + 10 * 86_400_000


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = empty_ledger(redis_server)
    yield connection
    connection.close()


def spent(client: redis.Redis, campaign_id: str) -> tuple[int, int]:
    daily = client.get(daily_spent_key(campaign_id, DAY)) or 0
    return int(daily), int(client.get(lifetime_spent_key(campaign_id)) or 0)


def impressions(client: redis.Redis) -> list[dict]:
    return [json.loads(fields[b"value"]) for _, fields in client.xrange(OUTBOX)]


def test_a_settled_bid_costs_its_clearing_price_and_records_one_impression_at_it(client):
    offer = campaign(C1, 2_000_000, 10_000)
    ledger = RedisBudgetLedger(client, FixedClock(NOW))
    reservations = RedisReservations(client)
    bid_id = reserve(ledger, offer, window_s=60)
    assert spent(client, C1) == (2_000, 2_000) and impressions(client) == []
    assert reservations.settle(C1, bid_id, 1_234) == "settled"
    assert spent(client, C1) == (1_234, 1_234)
    [event] = impressions(client)
    assert (event["impressionId"], event["priceMicros"], event["campaignId"]) == (
        bid_id, 1_234, C1
    )  # fmt: skip
    for again in (lambda: reservations.settle(C1, bid_id, 1), lambda: reservations.release(
        C1, bid_id)):  # fmt: skip
        assert again() == "settled"
    assert spent(client, C1) == (1_234, 1_234) and len(impressions(client)) == 1
    tally = reservations.tally(C1, DAY)
    assert (tally.reserved, tally.settled, tally.settled_micros, tally.open_micros) == (
        1, 1, 1_234, 0
    )  # fmt: skip


def test_a_loss_or_the_window_releases_and_a_win_without_billing_settles_at_its_price(client):
    offer = campaign(C2, 1_000_000, 3_000)  # three reservations fit
    ledger = RedisBudgetLedger(client, FixedClock(NOW))
    reservations = RedisReservations(client)
    lost, silent, won = (reserve(ledger, offer, window_s=60) for _ in range(3))
    assert reserve(ledger, offer, window_s=60) is None  # the budget is held
    assert reservations.release(C2, lost) == "released"
    assert reservations.win(C2, won, 700) == "won"
    assert spent(client, C2) == (2_000, 2_000)
    before_window = int(NOW.timestamp() * 1000) + 59_000
    assert reservations.sweep(now_ms=before_window) == 0
    clock = FixedClock(NOW.replace(minute=5))
    assert Settlement(reservations, clock=clock).sweep() == 2
    assert (reservations.state(C2, silent), reservations.state(C2, won)) == (
        "released", "settled"
    )  # fmt: skip
    assert spent(client, C2) == (700, 700)
    assert [e["priceMicros"] for e in impressions(client)] == [700]
    assert reservations.settle(C2, silent, 1_000) == "released"  # too late: nothing moves
    assert spent(client, C2) == (700, 700)


def test_concurrent_notices_of_one_bid_move_its_money_once(client):
    offer = campaign(C3, 1_000_000, 100_000)
    ledger = RedisBudgetLedger(client, FixedClock(NOW))
    reservations = RedisReservations(client)
    bids = [reserve(ledger, offer, window_s=60) for _ in range(40)]

    def storm(bid_id: str) -> None:
        with ThreadPoolExecutor(6) as pool:
            for n in range(12):
                if n % 3 == 2:
                    pool.submit(reservations.release, C3, bid_id)
                else:
                    pool.submit(reservations.settle, C3, bid_id, 400 + n)

    for bid_id in bids:
        storm(bid_id)
    states = Counter(reservations.state(C3, b) for b in bids)
    assert set(states) <= {"settled", "released"} and sum(states.values()) == 40
    events = impressions(client)
    assert len(events) == states["settled"] == len({e["impressionId"] for e in events})
    assert spent(client, C3)[0] == sum(e["priceMicros"] for e in events)


def test_eight_exchanges_and_a_killed_replica_never_overspend_and_settle_exactly(
    client, redis_server
):
    campaigns = [campaign(n + 10, 1_000_000 + 7_919 * n, 3_500 + 911 * n)
                 for n in range(6)]  # fmt: skip
    budgets = {c.id: c.daily_budget_micros for c in campaigns}
    as_json = [c.model_dump_json() for c in campaigns]
    overspent: list[str] = []
    watch_failed: list[str] = []
    stop = threading.Event()

    def watch() -> None:  # spend never passes a budget, at any moment we look
        try:
            while not stop.is_set():
                for c in campaigns:
                    if max(spent(client, c.id)) > budgets[c.id]:
                        overspent.append(c.id)
                time.sleep(0.005)
        except Exception as exc:  # said by the test's failure, not as a thread warning
            watch_failed.append(repr(exc))

    outcomes: list[tuple[str, str, str, int]] = []
    watcher = threading.Thread(target=watch)
    with Workers() as workers:
        start = workers.context.Barrier(9 + 1)
        for seed in range(8):
            workers.start(f"exchange-{seed}", exchange_worker, redis_server.port, as_json, seed,
                          120, start)  # fmt: skip
        workers.doomed("replica", holding_worker, redis_server.port, as_json, 120, start)
        watcher.start()
        try:
            workers.ready(timeout_s=300)  # a spawned process may take a minute to import
            workers.meet(start)
            workers.receive("replica", timeout_s=60)  # its first reservation
            workers.kill("replica")  # the replica dies between reservation and settlement
            workers.gather(timeout_s=120, on_item=lambda _, outcome: outcomes.append(outcome))
        finally:
            stop.set()
            watcher.join()
    assert watch_failed == [] and overspent == []

    reservations = RedisReservations(client)
    reservations.sweep(now_ms=FAR_FUTURE_MS)  # every window has ended
    events = impressions(client)
    won = {bid: clearing for _, bid, fate, clearing in outcomes if fate == "won"}
    assert {e["impressionId"]: e["priceMicros"] for e in events} == won
    for c in campaigns:
        mine = [e["priceMicros"] for e in events if e["campaignId"] == c.id]
        assert spent(client, c.id) == (sum(mine), sum(mine))
        tally = reservations.tally(c.id, DAY)
        assert tally.settled == len(mine) and tally.settled_micros == sum(mine)
        assert tally.reserved == tally.settled + tally.released and tally.open_micros == 0
    assert all(
        reservations.state(cid, bid) == ("settled" if fate == "won" else "released")
        for cid, bid, fate, _ in outcomes
    )
    assert len(won) > 10 and len(outcomes) - len(won) > 10
