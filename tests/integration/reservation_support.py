"""Workers for the reservation tests: processes that bid (reserve) on tiny budgets and then act as
an exchange would, with notices repeated, reordered and sometimes never sent. Kept apart so that
spawned processes import only this small module."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.bidding.store.reservations import Hold, RedisReservations
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.storage.outbox import outbox_fields
from shared_layer.pipeline.domain.events import AdEvent

from .budget_ledger_support import FixedClock, ledger_campaign, ledger_client

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def campaign(number: int | str, cpm_micros: int, daily_budget: int) -> Campaign:
    """A campaign with uuid ids (impression events require them) and one ad."""
    campaign_id = str(uuid.UUID(int=int(number))) if isinstance(number, int) else number
    made = ledger_campaign(campaign_id, cpm_micros, daily_budget)
    ad = made.ads[0].model_copy(update={"id": str(uuid.uuid5(uuid.NAMESPACE_OID, campaign_id))})
    return made.model_copy(update={"ads": (ad,)})


def impression_record(campaign: Campaign, bid_id: str) -> list[bytes]:
    event = AdEvent.impression(
        impression_id=bid_id,
        campaign_id=campaign.id,
        ad_id=campaign.ads[0].id,
        user_id="user-1",
        placement_id="placement-1",
        bid_cpm_micros=campaign.cpm_micros,
        price_micros=campaign.cpm_micros // 1000,
        at=NOW,
    )
    return outbox_fields(event)


def reserve(ledger: RedisBudgetLedger, campaign: Campaign, window_s: int) -> str | None:
    """A bid for `campaign`: its reservation's id, or None when the budget refused."""
    bid_id = str(uuid.uuid4())
    price = campaign.cpm_micros // 1000
    result = ledger.reserve(
        campaign, price, impression_record(campaign, bid_id), user_id=None,
        hold=Hold(bid_id, window_s=window_s),
    )  # fmt: skip
    return bid_id if result.charged else None


def exchange_worker(port: int, campaigns_json: list[str], seed: int, bids: int, start: Any,
                    put: Callable[[Any], None]) -> None:  # fmt: skip
    """Bid `bids` times; for each reservation, as an exchange: a random half win at a random
    clearing price (billing notice 1-3 times, a win notice before or after, a late loss notice
    that must change nothing), the others lose (a loss notice, or none: the window's sweep).
    Calls `put((campaign id, bid id, "won" | "lost", clearing micros))` per bid."""
    campaigns, ledger, reservations = _bidder(port, campaigns_json)
    rng = random.Random(seed)
    start.wait()
    for _ in range(bids):
        campaign = rng.choice(campaigns)
        bid_id = reserve(ledger, campaign, window_s=1)
        if bid_id is None:
            continue
        if rng.random() < 0.5:
            amount = campaign.cpm_micros // 1000
            clearing = rng.randint(1, amount)
            moves = [("settle", clearing)] * rng.randint(1, 3)
            moves.insert(rng.randint(0, len(moves)), ("win", clearing))
            moves.append(("release", 0))
            for move, price in moves:
                _send(reservations, move, campaign.id, bid_id, price)
            put((campaign.id, bid_id, "won", clearing))
        else:
            if rng.random() < 0.7:
                for _ in range(rng.randint(1, 2)):
                    reservations.release(campaign.id, bid_id)
            put((campaign.id, bid_id, "lost", 0))


def holding_worker(port: int, campaigns_json: list[str], bids: int, start: Any,
                   channel: Connection) -> None:  # fmt: skip
    """A replica that reserves and is killed before any notice: sends each bid id it holds on
    `channel`, its own Pipe (a process killed while writing to a shared queue would silence the
    queue's other writers), then waits to be killed."""
    campaigns, ledger, _ = _bidder(port, campaigns_json)
    rng = random.Random(-1)
    start.wait()
    for _ in range(bids):
        bid_id = reserve(ledger, rng.choice(campaigns), window_s=1)
        if bid_id is not None:
            channel.send(bid_id)
    time.sleep(600)


def _bidder(port: int, campaigns_json: list[str]) -> tuple[
        list[Campaign], RedisBudgetLedger, RedisReservations]:  # fmt: skip
    client = ledger_client(port)
    campaigns = [Campaign.model_validate_json(raw) for raw in campaigns_json]
    return campaigns, RedisBudgetLedger(client, FixedClock(NOW)), RedisReservations(client)


def _send(reservations: RedisReservations, move: str, campaign_id: str, bid_id: str,
          price: int) -> None:  # fmt: skip
    if move == "settle":
        reservations.settle(campaign_id, bid_id, price)
    elif move == "win":
        reservations.win(campaign_id, bid_id, price)
    else:
        reservations.release(campaign_id, bid_id)
