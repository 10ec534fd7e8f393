"""Campaign performance reports, pure: the date range, the arithmetic, the response.

Why pure: these are the numbers advertisers pay by, so every rule here is unit-tested without a
network; `reports` fetches the integer counts (PostgreSQL, Redis) and this module turns them
into the specification's response (docs/specification.md, "Analytics APIs").

The rules:

- A range is ``startDate`` and ``endDate``, both required, ``YYYY-MM-DD`` (UTC days), start not
  after end, at most `MAX_RANGE_DAYS` days counting both ends. Every day of it appears in
  ``dailyMetrics``, oldest first, with zeros where nothing happened (before the campaign
  existed, days to come); a day whose numbers could not be read is left out and listed in
  ``missingDates``, and ``partial`` is then true.
- Counts are integers and spend is integer micros; ratios are computed from those integers
  with exact integer division, rounded half up: ``ctr`` in percent (2.5 means 2.5 %) to
  `CTR_PLACES` places, ``cpc`` (spend / clicks) and ``cpm`` (spend x 1000 / impressions) to a
  whole micro. The summary's ratios come from its totals, never from averaging daily ratios.
- A ratio whose denominator is zero is ``null``: no impressions means no CTR and no CPM, no
  clicks means no CPC. 0 would claim a measured rate (a 0 % CTR, free clicks) that never was.
- Money goes out twice: as a decimal JSON number (``spend: 125.5``, the specification's form) and as
  exact integer micros beside it (``spendMicros``). A JSON number is exact for up to 15
  significant digits, which covers any day's spend (at most a daily budget, 10^9 units); a
  total beyond that is the nearest double, and ``totalSpendMicros`` stays exact.

Example::

    >>> r = parse_date_range({"startDate": "2025-11-28", "endDate": "2025-11-29"})
    >>> counts = {date(2025, 11, 29): DayCounts(impressions=40, clicks=1, spend_micros=100_000)}
    >>> body = report_body("c-1", r, counts)
    >>> body["summary"]["ctr"], body["summary"]["cpc"], body["summary"]["cpm"]
    (2.5, 0.1, 2.5)
    >>> [d["impressions"] for d in body["dailyMetrics"]]
    [0, 40]
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.money import Micros, to_decimal

__all__ = [
    "CTR_PLACES",
    "MAX_RANGE_DAYS",
    "ZERO",
    "DateRange",
    "DayCounts",
    "DayPlan",
    "cache_entry",
    "cache_key",
    "cacheable",
    "canonical_campaign_id",
    "cpc_micros",
    "cpm_micros",
    "ctr_percent",
    "parse_cache_entry",
    "parse_date_range",
    "plan_days",
    "report_body",
]

MAX_RANGE_DAYS: Final = 366
CTR_PLACES: Final = 4
_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UUID_TEXT: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive range of UTC days."""

    start: date
    end: date

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    def days(self) -> list[date]:
        """Every day, oldest first (never steps past `end`, so 9999-12-31 is fine)."""
        return [self.start + timedelta(days=i) for i in range(self.length)]


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One day's (or a total's) exact numbers."""

    impressions: int = 0
    clicks: int = 0
    spend_micros: Micros = 0

    def __add__(self, other: DayCounts) -> DayCounts:
        return DayCounts(
            self.impressions + other.impressions,
            self.clicks + other.clicks,
            self.spend_micros + other.spend_micros,
        )


ZERO: Final = DayCounts()


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Where each day of a range comes from, relative to today (UTC)."""

    closed: tuple[date, ...]  # before today: PostgreSQL daily_metrics, cached in Redis
    today: date | None  # in the range: the live counters
    future: tuple[date, ...]  # after today: nothing can have happened yet (zeros)


def parse_date_range(query: Mapping[str, str]) -> DateRange:
    """The range from ``startDate`` and ``endDate``; a 400 naming every problem otherwise.

    Only the strict ``YYYY-MM-DD`` form is accepted (not ``20251129``, ``2025-W48-6`` or other
    forms `date.fromisoformat` would take): a report for the wrong days is worse than a 400.

    >>> parse_date_range({"startDate": "2024-01-01", "endDate": "2024-12-31"}).length
    366
    """
    problems: list[str] = []
    fields: list[str] = []
    start = _parse_day(query, "startDate", problems, fields)
    end = _parse_day(query, "endDate", problems, fields)
    if start is not None and end is not None:
        if start > end:
            problems.append("startDate: must not be after endDate")
            fields.append("startDate")
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            problems.append(f"endDate: the range may cover at most {MAX_RANGE_DAYS} days")
            fields.append("endDate")
    if problems or start is None or end is None:
        raise ValidationFailed("; ".join(problems), fields)
    return DateRange(start, end)


def _parse_day(
    query: Mapping[str, str], name: str, problems: list[str], fields: list[str]
) -> date | None:
    raw = query.get(name)
    if raw is None or raw == "":
        problems.append(f"{name}: required (YYYY-MM-DD)")
        fields.append(name)
        return None
    if _DATE_TEXT.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    problems.append(f"{name}: not a date in the form YYYY-MM-DD")
    fields.append(name)
    return None


def canonical_campaign_id(raw: str) -> str | None:
    """The id as campaigns store it (lower-case hyphenated UUID), or None if it is not one.

    Anything else cannot name a campaign: the caller answers 404 without asking PostgreSQL.

    >>> canonical_campaign_id("3F2B8D9C-1F1C-4A0E-8E4B-9A573F1F2B8D")
    '3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d'
    >>> canonical_campaign_id("campaign-456") is None
    True
    """
    return raw.lower() if _UUID_TEXT.fullmatch(raw) else None


def plan_days(date_range: DateRange, today: date) -> DayPlan:
    """Split a range into closed days, today and days to come."""
    days = date_range.days()
    return DayPlan(
        closed=tuple(d for d in days if d < today),
        today=today if date_range.start <= today <= date_range.end else None,
        future=tuple(d for d in days if d > today),
    )


def cacheable(day: date, now: datetime, grace_s: float) -> bool:
    """True once `day` has been over for `grace_s` seconds.

    Events reach daily_metrics within a second or so, but a few may come late (a Kafka outage,
    retries): caching a day only after a grace period keeps them from being hidden for the
    cache's hour. Before that, the day is simply read from PostgreSQL each time.

    >>> cacheable(date(2025, 11, 28), datetime(2025, 11, 29, 0, 9, tzinfo=UTC), 600)
    False
    """
    closed_at = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=1)
    return now >= closed_at + timedelta(seconds=grace_s)


def cache_key(campaign_id: str, day: date) -> str:
    """The specification's ``analytics::{campaignId}::{date}``.

    >>> cache_key("c-1", date(2025, 11, 29))
    'analytics::c-1::2025-11-29'
    """
    return f"analytics::{campaign_id}::{day.isoformat()}"


def cache_entry(counts: DayCounts) -> str:
    """A cached day as JSON (integers only, spend in micros)."""
    return json.dumps(
        {
            "impressions": counts.impressions,
            "clicks": counts.clicks,
            "spendMicros": counts.spend_micros,
        },
        separators=(",", ":"),
    )


def parse_cache_entry(raw: bytes | str | None) -> DayCounts | None:
    """A cached day, or None when missing or unreadable (then it is read again, a miss)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        values = (data["impressions"], data["clicks"], data["spendMicros"])
    except (ValueError, TypeError, KeyError):
        return None
    if not all(type(v) is int and v >= 0 for v in values):
        return None
    return DayCounts(*values)


def _divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers, exactly."""
    return (2 * numerator + denominator) // (2 * denominator)


def ctr_percent(clicks: int, impressions: int) -> Decimal | None:
    """Clicks per 100 impressions, to `CTR_PLACES` places; None without impressions.

    >>> ctr_percent(1, 3), ctr_percent(1, 0)
    (Decimal('33.3333'), None)
    """
    if impressions <= 0:
        return None
    scaled = _divide_half_up(clicks * 100 * 10**CTR_PLACES, impressions)
    return Decimal(scaled).scaleb(-CTR_PLACES)


def cpc_micros(spend_micros: Micros, clicks: int) -> Micros | None:
    """Spend per click, to a whole micro; None without clicks.

    >>> cpc_micros(1_000_001, 2), cpc_micros(5, 0)
    (500001, None)
    """
    return _divide_half_up(spend_micros, clicks) if clicks > 0 else None


def cpm_micros(spend_micros: Micros, impressions: int) -> Micros | None:
    """Spend per thousand impressions, to a whole micro; None without impressions.

    >>> cpm_micros(2_500, 1), cpm_micros(10, 3)
    (2500000, 3333)
    """
    return _divide_half_up(spend_micros * 1000, impressions) if impressions > 0 else None


def _number(value: Decimal) -> float:
    """A decimal as a JSON number: Python writes a float by its shortest repr, which is the
    decimal itself up to 15 significant digits. The only float step is this encoding."""
    return float(value)


def _money(micros: Micros | None) -> float | None:
    return None if micros is None else _number(to_decimal(micros))


def _ratios(counts: DayCounts) -> dict[str, Any]:
    ctr = ctr_percent(counts.clicks, counts.impressions)
    return {
        "ctr": None if ctr is None else _number(ctr),
        "cpc": _money(cpc_micros(counts.spend_micros, counts.clicks)),
        "cpm": _money(cpm_micros(counts.spend_micros, counts.impressions)),
    }


def _day_json(day: date, counts: DayCounts) -> dict[str, Any]:
    ratios = _ratios(counts)
    return {
        "date": day.isoformat(),
        "impressions": counts.impressions,
        "clicks": counts.clicks,
        "ctr": ratios["ctr"],
        "spend": _money(counts.spend_micros),
        "spendMicros": counts.spend_micros,
        "cpc": ratios["cpc"],
        "cpm": ratios["cpm"],
    }


def report_body(
    campaign_id: str,
    date_range: DateRange,
    counts: Mapping[date, DayCounts],
    missing: Collection[date] = (),
    source: str = "postgres",
    pacing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The response: every day of the range (zeros where `counts` has none) except `missing`;
    `source` says where today's numbers came from ("live" counters or "postgres"); `pacing`,
    the campaign's pacing now with its tier (`CampaignReports.pacing`), is shown as such.
    ``houseImpressions`` counts apart the impressions a house campaign filled (charged 0, never
    bought): all of its impressions, and none of any other tier's."""
    house = pacing is not None and pacing.get("tier") == "house"
    skipped = set(missing)
    daily = []
    total = ZERO
    for day in date_range.days():
        if day in skipped:
            continue
        day_counts = counts.get(day, ZERO)
        total = total + day_counts
        daily.append(
            {**_day_json(day, day_counts), "houseImpressions": day_counts.impressions * house}
        )
    ratios = _ratios(total)
    return {
        "campaignId": campaign_id,
        "dateRange": {"start": date_range.start.isoformat(), "end": date_range.end.isoformat()},
        "summary": {
            "totalImpressions": total.impressions,
            "houseImpressions": total.impressions * house,
            "totalClicks": total.clicks,
            "ctr": ratios["ctr"],
            "totalSpend": _money(total.spend_micros),
            "totalSpendMicros": total.spend_micros,
            "cpc": ratios["cpc"],
            "cpm": ratios["cpm"],
        },
        "dailyMetrics": daily,
        "partial": bool(skipped),
        "missingDates": sorted(d.isoformat() for d in skipped),
        "source": source,
        "pacing": None if pacing is None else dict(pacing),
    }
