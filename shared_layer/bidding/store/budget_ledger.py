"""The budget ledger in Redis: where an impression's price is charged, never beyond its budgets.

Why a seam: the auction decides who may win; only the ledger knows whether the winner can still
pay. `BudgetLedger` is the narrow contract (one method, `charge`) that the bid function uses;
`RedisBudgetLedger` is the real one, and unit tests use an in-memory double of this contract.

The rule (`check_charge`, pure): a charge of `price` succeeds only if BOTH the day's spend plus
price stays within the daily budget AND the lifetime spend plus price stays within the lifetime
budget (when there is one); then both are increased by price, otherwise neither. In Redis the
same rule runs as ONE Lua script (`CHARGE_SCRIPT`), so that the check and both increments are a
single atomic step: concurrent bids from any number of replicas can never overspend.

Redis keys, next to the specification's (docs/specification.md, "Redis keys"; marked spec);
``{shard<k>of<n>}`` is the Redis Cluster hash tag of the campaign's shard (`kernel.storage.shards`;
braces literal)::

    {campaigns}::campaign::<campaignId>      spec's campaign::{campaignId}: cache (JSON, 5 min)
    {campaigns}::all                         spec's campaigns::all: active campaign ids
    {campaigns}::all::built                  ours: the set above is complete (an empty set and
                                             a flushed cache look alike in Redis otherwise)
    {campaigns}::version                     ours: INCR on every campaign change
    campaigns::changes                       ours: pub/sub channel, message = campaign id or *
    analytics::{campaignId}::{date}          spec: analytics cache (1 h)
    stats::{impressions|clicks|spend}::{campaignId}::{date}   spec: live counters
    kafka::offset::{topicName}::{partitionId}                  spec: consumer offsets
    budget::spent::{shard<k>of<n>}::<campaignId>::<yyyy-mm-dd>  ours: micros spent on that day
                                             of the campaign (its time zone's date; UTC by
                                             default; TTL 3 days)
    budget::spent::{shard<k>of<n>}::<campaignId>::lifetime      ours: micros spent since the
                                                               campaign began
    frequency::{shard<k>of<n>}::<campaignId>::<userId>   ours: the user's impression times (ms)
                                             of that campaign within its frequency cap's window
    budget::ledger::ready::{shard<k>of<n>}   ours: the shard's ledger is complete (set at its
                                             rebuild)
    events::outbox::{shard<k>of<n>}          ours: events recorded with their charge (outbox.py)
    click::seen::{shard<k>of<n>}::<impressionId>   ours: the click of an impression is counted

Every key one charge touches carries its campaign's shard tag (`campaign_slot_tag`), so on a
Redis Cluster they are all in one hash slot, as a multi-key script requires. The daily key keeps
a few days for reconciliation, then expires; a frequency key expires with its window. One Redis
server has one shard (``{shard0of1}``).

The same script applies the campaign's pacing (`bidding.domain.pacing.pacing_limit`: the most the
day's spend may reach now; over it the outcome is ``PACED``) and its frequency cap
(``FREQUENCY_CAPPED`` when the user already had that many impressions in the window; a charged
impression adds its time). So no concurrent request can pass either between the check and the
charge.

A ledger that lost its data (Redis restarted without its AOF, or flushed, or a cluster master
lost with its replica) would see every campaign as unspent. So every charge first checks its
shard's ready key: without it the script refuses (`LedgerNotReady`, a 503: no ad is charged,
serve answers no fill) until `budget_recovery` has rebuilt the spend from PostgreSQL's
event-built record and set the key.

The day is the campaign's date in its time zone (`bidding.domain.pacing.campaign_day`, UTC unless
the campaign says otherwise) at an injectable clock, so tests can move time.

Example::

    ledger = RedisBudgetLedger(connect(url, retries=0), clock=utc_now, shards=key_layout(url))
    result = ledger.charge(campaign, impression_price(campaign.cpm_micros))
    if result.charged: ...   # serve the ad; otherwise try the next candidate
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from shared_layer.bidding.domain.auction import Price
from shared_layer.bidding.domain.budget import ChargeOutcome, ChargeResult
from shared_layer.bidding.domain.pacing import campaign_day, pacing_limit
from shared_layer.bidding.store.reservations import Hold, encode_record, reservation_keys
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.models import Ad, BidRequest, Campaign
from shared_layer.kernel.money import Micros
from shared_layer.kernel.privacy import is_anonymous
from shared_layer.kernel.storage.lock import Lease
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.outbox import (
    OUTBOX_PREFIX,
    outbox_fields,
    outbox_stream,
    outbox_streams,
)
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, UNREACHABLE_ERRORS, read_many
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.domain.events import AdEvent

__all__ = [
    "CHARGE_SCRIPT",
    "DAILY_KEY_TTL_SECONDS",
    "LEDGER_READY_PREFIX",
    "REBUILD_LOCK_KEY",
    "LedgerNotReady",
    "LedgerRebuild",
    "RedisBudgetLedger",
    "campaign_slot_tag",
    "daily_spent_key",
    "frequency_key",
    "impression_recorder",
    "ledger_ready_key",
    "lifetime_spent_key",
]

DAILY_KEY_TTL_SECONDS: Final = 3 * 24 * 3600
LEDGER_READY_PREFIX: Final = "budget::ledger::ready"
REBUILD_LOCK_KEY: Final = "budget::ledger::rebuild-lock"

# The budget rule (bidding.domain.budget.check_charge) as one atomic script; its KEYS and ARGV are
# described at the top of the file.
CHARGE_SCRIPT: Final = script(__file__, "budget_charge.lua")


def campaign_slot_tag(campaign_id: str, shards: Shards = SINGLE) -> str:
    """``{shard<k>of<n>}::<campaignId>``: the tagged campaign part of every key one charge touches.

    Every per-campaign key a charge script reads or writes is built with this, so that all of
    them land in one hash slot with the shard's outbox stream and ready key, as a multi-key
    script on a Redis Cluster requires; the campaign id keeps the keys of two campaigns apart.
    """
    return shards.campaign(campaign_id)


def daily_spent_key(campaign_id: str, day: date, shards: Shards = SINGLE) -> str:
    """``budget::spent::{shard<k>of<n>}::<campaignId>::<yyyy-mm-dd>``: micros spent that UTC day."""
    return f"budget::spent::{campaign_slot_tag(campaign_id, shards)}::{day.isoformat()}"


def lifetime_spent_key(campaign_id: str, shards: Shards = SINGLE) -> str:
    """``budget::spent::{shard<k>of<n>}::<campaignId>::lifetime``: micros spent in its lifetime."""
    return f"budget::spent::{campaign_slot_tag(campaign_id, shards)}::lifetime"


def ledger_ready_key(shards: Shards, shard: int, prefix: str = LEDGER_READY_PREFIX) -> str:
    """``budget::ledger::ready::{shard<k>of<n>}``: shard `shard`'s ledger is complete."""
    return f"{prefix}::{shards.tag(shard)}"


def frequency_key(campaign_id: str, user_id: str, shards: Shards = SINGLE) -> str:
    """``frequency::{shard<k>of<n>}::<campaignId>::<userId>``: the user's impression times."""
    return f"frequency::{campaign_slot_tag(campaign_id, shards)}::{user_id}"


_OUTCOMES: Final = {outcome.value: outcome for outcome in ChargeOutcome}
# A frequency cap's ZSET member must be unique per charge: this process's random prefix and a
# counter (cheaper than random bytes per charge, unique across processes and restarts).
_MEMBER_PREFIX: Final = os.urandom(6).hex() + "-"
_MEMBER_COUNTER: Final = itertools.count()
# Campaign-days whose four charge keys a ledger remembers (emptied when full: a new day's keys).
_KEY_CACHE_SIZE: Final = 50_000


class RedisBudgetLedger:
    """The budget ledger in Redis: one atomic Lua script per charge, run by EVALSHA.

    The script is sent to Redis once (redis-py's registered script: EVALSHA, and on NOSCRIPT,
    after a restart for example, SCRIPT LOAD and EVALSHA again).

    Give it a client WITHOUT automatic retries (``retry=Retry(NoBackoff(), 0)``): a charge is not
    idempotent, and a retried EVALSHA whose first reply was lost would charge twice. An
    `UpstreamUnavailable` from `charge` therefore means "maybe charged": the bid answers no bid,
    the budget errs on the side of underspending, and PostgreSQL's event-built record stays the
    reference for billing.
    """

    def __init__(
        self,
        redis_client: Any,
        clock: Clock = utc_now,
        *,
        daily_key_ttl_seconds: int = DAILY_KEY_TTL_SECONDS,
        shards: Shards = SINGLE,
        outbox_prefix: str = OUTBOX_PREFIX,
        ready_prefix: str = LEDGER_READY_PREFIX,
    ) -> None:
        self._clock = clock
        self._client = redis_client
        self._ttl = daily_key_ttl_seconds
        self._shards = shards
        self._outbox_prefix = outbox_prefix
        self._ready_prefix = ready_prefix
        self._script = redis_client.register_script(CHARGE_SCRIPT)
        self._key_cache: dict[tuple[str, date], tuple[str, str, str, str]] = {}

    def _charge_keys(self, campaign_id: str, day: date) -> tuple[str, str, str, str]:
        """The daily and lifetime spend keys, the outbox stream and the ready key of one charge
        (remembered per campaign and day: building them was a fifth of a paced decision)."""
        keys = self._key_cache.get((campaign_id, day))
        if keys is None:
            if len(self._key_cache) >= _KEY_CACHE_SIZE:
                self._key_cache.clear()
            shard = self._shards.of(campaign_id)
            keys = (
                daily_spent_key(campaign_id, day, self._shards),
                lifetime_spent_key(campaign_id, self._shards),
                outbox_stream(self._shards, shard, self._outbox_prefix),
                ledger_ready_key(self._shards, shard, self._ready_prefix),
            )
            self._key_cache[(campaign_id, day)] = keys
        return keys

    def charge(
        self,
        campaign: Campaign,
        price_micros: Micros,
        record: Sequence[bytes] = (),
        *,
        user_id: str | None = None,
    ) -> ChargeResult:
        """Charge one impression's price to both of the campaign's budgets, or to neither;
        with `record`, the impression event joins the outbox in the same atomic step.

        The campaign's pacing and (given the `user_id` the impression is for) its frequency cap
        are checked in that same step; a refusal charges and records nothing.
        """
        return self._run(campaign, price_micros, record, user_id=user_id)

    def reserve(
        self,
        campaign: Campaign,
        price_micros: Micros,
        record: Sequence[bytes],
        *,
        user_id: str | None,
        hold: Hold,
    ) -> ChargeResult:
        """As `charge`, but the amount is held by reservation `hold.bid_id` until it is settled
        or released (`bidding.store.reservations`), and `record` is kept with it, not sent: the
        impression event leaves only when the reservation settles, at the settled price."""
        return self._run(campaign, price_micros, record, user_id=user_id, hold=hold)

    def _run(
        self,
        campaign: Campaign,
        price_micros: Micros,
        record: Sequence[bytes],
        *,
        user_id: str | None,
        hold: Hold | None = None,
    ) -> ChargeResult:
        if price_micros < 0 or (price_micros == 0 and campaign.tier != "house"):
            raise ValueError("a charge must be positive (zero only for a house ad)")
        now = self._clock()
        day = campaign_day(campaign, now).day
        lifetime_budget = campaign.lifetime_cap_micros
        limit = pacing_limit(campaign, now, price_micros)
        # An anonymous user (no consent to store, kernel.privacy) gets no frequency cap entry.
        capped = user_id is not None and not is_anonymous(user_id)
        cap = campaign.frequency_cap if capped else None
        keys = list(self._charge_keys(campaign.id, day))
        if cap is not None or hold is not None:
            keys.append(frequency_key(campaign.id, user_id or "", self._shards))
        args = [
            price_micros,
            campaign.daily_cap_micros,
            -1 if lifetime_budget is None else lifetime_budget,
            self._ttl,
            -1 if limit is None else limit,
            0 if cap is None else cap.impressions,
            0 if cap is None else cap.window_seconds * 1000,
            int(now.timestamp() * 1000),
            f"{_MEMBER_PREFIX}{next(_MEMBER_COUNTER)}" if cap is not None else "",
        ]
        if hold is None:
            args.extend(record)
        else:
            keys += reservation_keys(campaign.id, hold.bid_id, day, self._shards)
            until_ms = int(now.timestamp() * 1000) + hold.window_s * 1000
            args += ["reserve", until_ms, encode_record(record), hold.keep_s]
        try:
            outcome, daily, lifetime = self._script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            raise _upstream_error("charge", exc) from exc
        if int(outcome) == ChargeOutcome.LEDGER_NOT_READY.value:
            raise LedgerNotReady("the budget ledger is being rebuilt from PostgreSQL")
        return ChargeResult(_OUTCOMES[int(outcome)], int(daily), int(lifetime))

    def ready(self) -> bool:
        """Whether every shard's ledger is complete (False after Redis lost data, until rebuilt)."""
        keys = [ledger_ready_key(self._shards, k, self._ready_prefix) for k in self._shards.all()]
        try:  # one EXISTS per key: on a cluster the keys are in different slots
            return all(self._client.exists(key) for key in keys)
        except REDIS_ERRORS as exc:
            raise _upstream_error("read", exc) from exc

    def spent(self, campaign_id: str, day: date | None = None) -> tuple[Micros, Micros]:
        """(spent on `day`, spent in the lifetime) in micros; `day` defaults to today (UTC)."""
        on_day = day if day is not None else self._clock().astimezone(UTC).date()
        return self.spent_many([(campaign_id, on_day)])[0]

    def spent_many(self, days: Sequence[tuple[str, date]]) -> list[tuple[Micros, Micros]]:
        """(spent on the day, lifetime spend) for each (campaign id, day): one MGET per slot."""
        if not days:
            return []
        shards = self._shards
        keys = [
            k
            for cid, day in days
            for k in (daily_spent_key(cid, day, shards), lifetime_spent_key(cid, shards))
        ]
        try:
            values = read_many(self._client, keys)
        except REDIS_ERRORS as exc:
            raise _upstream_error("read", exc) from exc
        return [(int(values[i] or 0), int(values[i + 1] or 0)) for i in range(0, len(values), 2)]


class LedgerNotReady(UpstreamUnavailable):
    """Redis has no complete budget ledger (it lost its data); nothing can be charged until
    `budget_recovery` rebuilt it from PostgreSQL."""

    code = "LEDGER_REBUILDING"


def _upstream_error(action: str, exc: Exception) -> Exception:
    if isinstance(exc, UNREACHABLE_ERRORS):
        return UpstreamUnavailable(f"budget ledger unavailable: could not {action} in Redis")
    return UpstreamFailed(f"budget ledger error: Redis refused to {action}")


class LedgerRebuild:
    """The Redis side of rebuilding the ledger from PostgreSQL (`service.budget_recovery`): which
    shards lost their ready key, whether their outbox streams are empty, and the write of each
    shard's campaigns' spend with its ready key in one MULTI/EXEC (all of a shard's keys share a
    hash slot, so this holds on a Redis Cluster too)."""

    def __init__(
        self,
        redis_client: Any,
        *,
        daily_key_ttl_seconds: int = DAILY_KEY_TTL_SECONDS,
        shards: Shards = SINGLE,
        outbox_prefix: str = OUTBOX_PREFIX,
        ready_prefix: str = LEDGER_READY_PREFIX,
    ) -> None:
        self._redis = redis_client
        self._ttl = daily_key_ttl_seconds
        self._shards = shards
        self._streams = outbox_streams(shards, outbox_prefix)
        self._ready_keys = [ledger_ready_key(shards, k, ready_prefix) for k in shards.all()]

    @property
    def shards(self) -> Shards:
        return self._shards

    def lease(self, ttl_s: int) -> Lease:
        """The rebuild lock (``budget::ledger::rebuild-lock``): one replica rebuilds at a time."""
        return Lease(self._redis, REBUILD_LOCK_KEY, ttl_s=ttl_s)

    def unready(self) -> list[int]:
        """The shards whose ready key is missing (one EXISTS each: different slots)."""
        return [k for k in self._shards.all() if not self._redis.exists(self._ready_keys[k])]

    def outboxes_empty(self, shards: Sequence[int]) -> bool:
        """Every impression these shards charged has left their outbox for Kafka."""
        return all(self._redis.xlen(self._streams[k]) == 0 for k in shards)

    def write(
        self, shard: int, spend: Sequence[tuple[str, date, Micros, Micros]], ready_value: str
    ) -> None:
        """Set each (campaign id, its day, spent that day, lifetime spend) of `shard` and then
        its ready key, atomically."""
        pipe = self._redis.pipeline(transaction=True)
        for campaign_id, day, daily, lifetime in spend:
            pipe.set(lifetime_spent_key(campaign_id, self._shards), lifetime)
            daily_key = daily_spent_key(campaign_id, day, self._shards)
            if daily:
                pipe.set(daily_key, daily, ex=self._ttl)
            else:
                pipe.delete(daily_key)
        pipe.set(self._ready_keys[shard], ready_value)
        pipe.execute()


def impression_recorder(
    request: BidRequest,
    impression_id: str,
    *,
    at: datetime,
    correlation: Correlation | None = None,
) -> Callable[[Campaign, Ad, Price], list[bytes]]:
    """The auction's `record` step for one bid request: the outbox fields of the impression a
    candidate would make (auction.decide appends them with the charge, only if it succeeds)."""

    def record(campaign: Campaign, ad: Ad, price: Price) -> list[bytes]:
        return outbox_fields(
            AdEvent.impression(
                impression_id=impression_id,
                campaign_id=campaign.id,
                ad_id=ad.id,
                user_id=request.user_id,
                placement_id=request.placement_id,
                bid_cpm_micros=price.bid_cpm_micros,
                price_micros=price.charge_micros,
                country=request.country_code,
                device_type=request.device_type,
                at=at,
            ),
            correlation,
        )

    return record
