"""Where a campaign report's numbers come from: closed days from PostgreSQL (cached in Redis),
today from the live counters.

Per request, whatever the range (up to 366 days), at most:

1. ONE Redis round trip: an MGET of the day cache (``analytics::{campaignId}::{date}`` for every
   closed day), today's three live counters (``stats::*::{campaignId}::{today}``) and their
   ready key (``stats::live::ready``: absent after Redis lost its data, until the counters are
   rebuilt from PostgreSQL; today is then read from PostgreSQL, ``source: "postgres"``);
2. ONE SQL statement: the campaign and its daily_metrics rows for the closed days the cache did
   not have (a LEFT JOIN, so an unknown campaign is no row at all: 404). Skipped when every
   closed day was cached and the campaign is known to exist (a cached day or a live counter
   proves it: both are only ever written for real campaigns);
3. after a read from PostgreSQL, one pipelined write of the days it returned to the cache
   (TTL 1 h), for days closed for longer than the grace period (`analytics.cacheable`).

Nothing is done per day. When a store is down the report degrades rather than fails:

- Redis down: closed days and today are all read from PostgreSQL (today's daily_metrics row is
  kept exact by the aggregation too); the report is complete, only slower.
- PostgreSQL down: cached days and today's counters are served; the days that needed
  PostgreSQL are reported missing (`ReportData.missing`, the response's ``partial``). If
  nothing proves that the campaign exists (no cached day, no live counter), the answer is
  `UpstreamUnavailable` (503): an unknown id and a campaign with nothing cached look alike.
- Both down: 503.

Example::

    reports = CampaignReports(redis.Redis(...), Database.from_url(...))
    data = reports.read("3f2b8d9c-...", DateRange(date(2025, 11, 1), date(2025, 11, 29)))
    body = report_body("3f2b8d9c-...", date_range, data.counts, data.missing)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from shared_layer.bidding.domain.pacing import campaign_day, expected_spend
from shared_layer.kernel.clock import Clock, utc_day, utc_now
from shared_layer.kernel.errors import AdServerError, NotFound, UpstreamUnavailable
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.money import to_json_number
from shared_layer.kernel.storage.postgres import Database
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.store.live_counters import ONE_SERVER, CounterKeys
from shared_layer.reporting.domain.analytics import (
    ZERO,
    DateRange,
    DayCounts,
    DayPlan,
    cache_entry,
    cacheable,
    parse_cache_entry,
    plan_days,
)
from shared_layer.reporting.metrics import CACHE_LOOKUPS, DEGRADED_READS
from shared_layer.reporting.store.reports import ReportStore

__all__ = ["CACHE_GRACE_S", "CACHE_TTL_S", "CampaignReports", "ReportData", "Source"]

CACHE_TTL_S: Final = 3600  # the analytics cache keeps a day for 1 hour
CACHE_GRACE_S: Final = 600  # a day is cached only once it has been over for 10 minutes

_LOG = get_logger("reports")


Source = Literal["live", "postgres"]


@dataclass(frozen=True)
class ReportData:
    """The counts per day (days absent here are zeros), the days that could not be read, and
    where today's numbers came from ("postgres" also when the range has no today)."""

    counts: dict[date, DayCounts]
    missing: tuple[date, ...] = ()
    source: Source = "postgres"


@dataclass(frozen=True)
class _RedisView:
    cached: dict[date, DayCounts]
    today: DayCounts | None  # None: Redis could not be read, or its counters are not ready
    available: bool
    known: bool = False  # a live counter is not zero: the campaign exists


class CampaignReports:
    """Reads a campaign's counts for a range; the clock decides what "today" is (UTC)."""

    def __init__(
        self,
        redis_client: Any,
        db: Database,
        *,
        clock: Clock = utc_now,
        cache_ttl_s: int = CACHE_TTL_S,
        cache_grace_s: float = CACHE_GRACE_S,
        shards: Shards = SINGLE,
        counter_keys: CounterKeys = ONE_SERVER,
    ) -> None:
        """`shards` and `counter_keys`: where the ledger and the live counters keep their keys
        (`key_layout(url)` and `CounterKeys.for_url(url)` of a Redis Cluster's URL)."""
        self._store = ReportStore(
            redis_client, db, clock=clock, shards=shards, counter_keys=counter_keys
        )
        self._clock = clock
        self._ttl = cache_ttl_s
        self._grace = cache_grace_s

    def advertiser_of(self, campaign_id: str) -> str | None:
        """The campaign's advertiser (from the campaign cache, else PostgreSQL); None if the
        campaign does not exist."""
        campaign = self._store.campaign(campaign_id)
        return campaign.advertiser_id if campaign is not None else None

    def pacing(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign's pacing now: mode, time zone, daily budget, ``spentToday`` (its own
        day, from the budget ledger) and ``expectedSpendNow`` (its curve); None when the
        campaign or its spend cannot be read (the report still answers)."""
        now = self._clock()
        try:
            campaign = self._store.campaign(campaign_id)
            if campaign is None:
                return None
            day = campaign_day(campaign, now).day
            spent_today = self._store.spent_on(campaign_id, day)
        except AdServerError as exc:
            _LOG.warning("pacing of %s not read: %s", campaign_id, exc)
            return None
        return {
            "pacing": campaign.pacing,
            "timeZone": campaign.time_zone,
            "day": day.isoformat(),
            "dailyBudget": to_json_number(campaign.daily_budget_micros),
            "spentToday": to_json_number(spent_today),
            "expectedSpendNow": to_json_number(expected_spend(campaign, now)),
            "tier": campaign.tier,  # a house campaign's impressions are house impressions
        }

    def read(self, campaign_id: str, date_range: DateRange) -> ReportData:
        """The counts of `campaign_id` (a canonical UUID) for every day of `date_range`.

        Raises NotFound for an unknown campaign, UpstreamUnavailable when nothing can be read.
        """
        now = self._clock()
        plan = plan_days(date_range, utc_day(lambda: now))
        view = self._read_redis(campaign_id, plan)
        counts = dict(view.cached)
        misses = [d for d in plan.closed if d not in view.cached]
        source: Source = "postgres"
        if plan.today is not None:
            if view.today is not None:
                counts[plan.today] = view.today
                source = "live"
            else:
                misses.append(plan.today)  # Redis down or not rebuilt: from PostgreSQL
        known = bool(view.cached) or view.known
        if not misses and known:
            return ReportData(counts, source=source)
        try:
            rows = self._store.read_days(campaign_id, misses)
        except UpstreamUnavailable as exc:
            DEGRADED_READS.labels(store="postgres").inc()
            if not known:
                raise UpstreamUnavailable(
                    "PostgreSQL is unavailable and Redis holds nothing for this campaign and "
                    "range; try again shortly"
                ) from exc
            _LOG.warning("PostgreSQL unavailable: report for %s is partial", campaign_id)
            return ReportData(counts, tuple(sorted(misses)), source)
        if rows is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        fetched = {day: rows.get(day, ZERO) for day in misses}
        counts.update(fetched)
        if view.available:
            self._fill_cache(
                campaign_id,
                {
                    day: day_counts
                    for day, day_counts in fetched.items()
                    if day != plan.today and cacheable(day, now, self._grace)
                },
            )
        return ReportData(counts, source=source)

    def _read_redis(self, campaign_id: str, plan: DayPlan) -> _RedisView:
        try:
            raw = self._store.read_redis(campaign_id, plan.closed, plan.today)
            if raw is None:
                return _RedisView({}, None, True)
            today = _live_counts(raw.live) if raw.live is not None else None
        except (UpstreamUnavailable, ValueError) as exc:
            DEGRADED_READS.labels(store="redis").inc()
            _LOG.warning("Redis unavailable for analytics (%s): reading PostgreSQL only", exc)
            return _RedisView({}, None, False)
        cached = {}
        for day, value in zip(plan.closed, raw.cached, strict=False):
            entry = parse_cache_entry(value)
            if entry is not None:
                cached[day] = entry
        CACHE_LOOKUPS.labels(result="hit").inc(len(cached))
        CACHE_LOOKUPS.labels(result="miss").inc(len(plan.closed) - len(cached))
        known = today is not None and today != ZERO
        if today is not None and not raw.live_ready:  # lost and not rebuilt yet
            DEGRADED_READS.labels(store="live-counters").inc()
            today = None
        return _RedisView(cached, today, True, known)

    def _fill_cache(self, campaign_id: str, days: dict[date, DayCounts]) -> None:
        if not days:
            return
        entries = {day: cache_entry(day_counts) for day, day_counts in days.items()}
        try:
            self._store.fill_cache(campaign_id, entries, self._ttl)
        except UpstreamUnavailable as exc:  # the report is right; only the cache is cold
            _LOG.warning("could not fill the analytics cache for %s: %s", campaign_id, exc)


def _live_counts(values: Sequence[bytes | str | None]) -> DayCounts:
    """Today's three counters (missing keys are zeros); ValueError if one is not an integer."""
    impressions, clicks, spend = (int(v) if v is not None else 0 for v in values)
    return DayCounts(impressions, clicks, spend)
