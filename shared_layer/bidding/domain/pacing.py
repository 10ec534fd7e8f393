"""Budget pacing: how much of its daily budget a campaign may have spent by now (pure).

Why: the auction alone spends a daily budget as fast as traffic allows, so a campaign can be
gone by 9 a.m. A campaign's `pacing` says how its day should be spread:

- ``asap`` (the default, the old behaviour): no curve; only the hard caps stop it.
- ``even``: the expected spend grows linearly over the campaign's day,
  ``expected(x) = budget * x`` where ``x`` is the elapsed share of the day (0 at midnight, 1 at
  the next midnight, in the campaign's time zone, so a 23- or 25-hour DST day is still one day).
- ``frontloaded``: ``expected(x) = budget * x * (3 - x) / 2``: the spend rate starts at 1.5 times
  the even rate and falls linearly to 0.5 times it at the end of the day (62.5% of the budget by
  midday, 84.4% by 18:00).
- A sponsorship with a daily goal (`Campaign.goal`) is paced ``even`` over its goal's money
  (goal impressions x its price per impression, `Campaign.pacing_budget_micros`): behind its curve
  it bids (and beats every standard campaign); ahead of it, or with its goal met, it is refused
  ``PACED`` and the auction moves on. A house ad is never paced.

A paced campaign that is AHEAD of its curve is skipped (it does not bid) until the curve has
caught up; one that is behind bids normally. The check is exact and atomic because it runs in
the same Lua step as the charge (bidding/store/budget_charge.lua): `pacing_limit` is the most the
day's spend may reach after this charge, and the script refuses (``PACED``) what would exceed it. So
the pacing state is the day's spend itself, which lives in Redis (AOF) and is rebuilt from
PostgreSQL with the rest of the ledger. `resume_at` tells a bid replica when a refused campaign
can bid again, so it does not ask Redis for every request meanwhile.

The daily budget's day is the campaign's day too (`campaign_day`): a campaign in
``America/New_York`` starts afresh at midnight New York time; ``UTC`` (the default) keeps the
UTC day of the ledger and the reports.

Money stays integer micros; only time is a float (`resume_at`). Every function takes ``now``
(an aware datetime from an injected clock) and does no I/O.

Example::

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    expected_spend(even_campaign_100_usd, now)        # 50_000_000 (half the day, half the budget)
    pacing_limit(even_campaign_100_usd, now, 2_500)   # 50_002_500: charged if spent <= limit
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from shared_layer.kernel.models import Campaign
from shared_layer.kernel.money import Micros

__all__ = [
    "CampaignDay",
    "PacingMemo",
    "campaign_day",
    "day_bounds",
    "day_in_zone",
    "elapsed_share",
    "expected_spend",
    "pacing_limit",
    "resume_at",
]

_MICROS_PER_SECOND: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class CampaignDay:
    """The campaign's current day in its time zone: its date and its bounds (aware, UTC)."""

    day: date
    start: datetime
    end: datetime

    @property
    def length_us(self) -> int:
        return _us(self.end - self.start)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _bounds(zone_name: str, day: date) -> CampaignDay:
    zone = _zone(zone_name)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return CampaignDay(day, start, end)  # in UTC: subtracting them counts real hours


def campaign_day(campaign: Campaign, now: datetime) -> CampaignDay:
    """The day `now` falls in, in the campaign's time zone (its daily budget's day).

    >>> campaign_day(campaign_in_new_york, datetime(2026, 12, 3, 3, 0, tzinfo=UTC)).day
    ... # doctest: +SKIP
    datetime.date(2026, 12, 2)
    """
    return day_in_zone(campaign.time_zone, now)


_CURRENT: dict[str, CampaignDay] = {}  # per zone, the day last asked for (the hot path's)


def day_bounds(zone_name: str, day: date) -> CampaignDay:
    """`day` in the zone `zone_name`, with its bounds (aware, UTC)."""
    return _bounds(zone_name, day)


def day_in_zone(zone_name: str, now: datetime) -> CampaignDay:
    """The day `now` falls in, in the time zone `zone_name` (an IANA name).

    The day last found per zone is kept, so that most calls are two comparisons rather than a
    time zone conversion (the auction asks for every candidate it charges).
    """
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    known = _CURRENT.get(zone_name)
    if known is not None and known.start <= now < known.end:
        return known
    bounds = _bounds(zone_name, now.astimezone(_zone(zone_name)).date())
    _CURRENT[zone_name] = bounds
    return bounds


def elapsed_share(campaign: Campaign, now: datetime) -> tuple[int, int]:
    """(microseconds elapsed in the campaign's day, microseconds the day has): exact."""
    bounds = campaign_day(campaign, now)
    return _us(now - bounds.start), bounds.length_us


def expected_spend(campaign: Campaign, now: datetime) -> Micros:
    """The spend the campaign's curve allows by `now` (micros, rounded down).

    ``asap``: the whole daily budget at any time of the day.
    """
    budget = campaign.pacing_budget_micros
    if campaign.effective_pacing == "asap":
        return budget
    elapsed, length = elapsed_share(campaign, now)
    if campaign.effective_pacing == "even":
        return budget * elapsed // length
    # frontloaded: budget * x * (3 - x) / 2 with x = elapsed / length, in integers
    return budget * elapsed * (3 * length - elapsed) // (2 * length * length)


def pacing_limit(campaign: Campaign, now: datetime, price_micros: Micros) -> Micros | None:
    """The most the day's spend may be AFTER a charge of `price_micros` now; None: no pacing.

    One impression's price of slack, so that the campaign is charged as soon as the curve has
    grown by one price rather than one price late (it never runs ahead by more than that).
    """
    if campaign.effective_pacing == "asap":
        return None
    return min(campaign.pacing_budget_micros, expected_spend(campaign, now) + price_micros)


def resume_at(campaign: Campaign, now: datetime, spent_micros: Micros) -> datetime:
    """When a campaign refused for pacing (spent `spent_micros` today) may be charged again.

    The earliest moment the curve reaches `spent_micros` (then one more impression fits under
    `pacing_limit`), or the start of the campaign's next day. Time may be a float here: it only
    decides when to ask the ledger again, which stays the judge.
    """
    bounds = campaign_day(campaign, now)
    budget = campaign.pacing_budget_micros
    if campaign.effective_pacing == "asap" or budget <= 0 or spent_micros >= budget:
        return bounds.end
    share = min(1.0, spent_micros / budget)
    if campaign.effective_pacing == "frontloaded":
        # invert x * (3 - x) / 2 = share: x = (3 - sqrt(9 - 8 * share)) / 2
        share = (3 - (9 - 8 * share) ** 0.5) / 2
    moment = bounds.start + timedelta(microseconds=int(share * bounds.length_us))
    return max(now, min(moment, bounds.end))


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds


class PacingMemo:
    """Campaigns refused for pacing, skipped in this process until their curve caught up.

    Without it, a campaign ahead of its curve would cost a Redis round trip on every request
    until then. `eligible` is an auction eligibility check, `remember` takes a PACED refusal.
    The key includes what shapes the curve, so an edited campaign is asked again at once.
    Bounded: forgotten wholesale past `max_entries` (the ledger is asked again).
    """

    def __init__(self, clock: Callable[[], datetime], max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._until: dict[str, tuple[datetime, tuple[object, ...]]] = {}

    @staticmethod
    def _shape(campaign: Campaign) -> tuple[object, ...]:
        return (campaign.effective_pacing, campaign.time_zone, campaign.pacing_budget_micros)

    def eligible(self, campaign: Campaign, request: object) -> bool:
        held = self._until.get(campaign.id)
        if held is None:
            return True
        until, shape = held
        if shape != self._shape(campaign) or self._clock() >= until:
            self._until.pop(campaign.id, None)
            return True
        return False

    def remember(self, campaign: Campaign, spent_micros: Micros) -> None:
        if len(self._until) >= self._max:
            self._until.clear()
        until = resume_at(campaign, self._clock(), spent_micros)
        self._until[campaign.id] = (until, self._shape(campaign))
