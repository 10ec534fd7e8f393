"""The hourly report's query and answer (pure): GET /function/analytics/report.

Parameters: ``startDate`` and ``endDate`` (YYYY-MM-DD, days in `timeZone`, at most 366 days),
``granularity`` (hour, day or total; default day), ``groupBy`` (comma-separated: campaign, ad,
placement, country, deviceType), filters on the same dimensions (``campaignId``, ``adId``,
``placementId``, ``country``, ``deviceType``; comma-separated values), ``timeZone`` (IANA;
default the advertiser's, else UTC) and ``format`` (json or csv).

The figures come from hourly_metrics (UTC hours); a local hour or day is the UTC hours whose
start falls in it, so a report in a zone with a half-hour offset counts each UTC hour in the
local hour it starts in.

Example::

    query = parse_report_query({"startDate": "2026-12-01", "endDate": "2026-12-07",
                                "groupBy": "campaign,country"}, default_time_zone="UTC")
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.reporting.domain.analytics import (
    DayCounts,
    _money,
    _ratios,
    parse_date_range,
)

__all__ = [
    "DIMENSIONS",
    "ReportQuery",
    "ReportRow",
    "is_uuid",
    "parse_report_query",
    "report_csv",
    "report_json",
]

Granularity = Literal["hour", "day", "total"]
# API name -> (filter parameter, hourly_metrics column)
DIMENSIONS: Final[dict[str, tuple[str, str]]] = {
    "campaign": ("campaignId", "campaign_id"),
    "ad": ("adId", "ad_id"),
    "placement": ("placementId", "placement_id"),
    "country": ("country", "country"),
    "deviceType": ("deviceType", "device_type"),
}
_FIELD: Final = {"campaign": "campaignId", "ad": "adId", "placement": "placementId",
                 "country": "country", "deviceType": "deviceType"}  # fmt: skip
_MAX_FILTER_VALUES: Final = 1_000


@dataclass(frozen=True, slots=True)
class ReportQuery:
    start: date
    end: date
    granularity: Granularity
    group_by: tuple[str, ...]  # API names, in DIMENSIONS order
    filters: dict[str, tuple[str, ...]]  # API name -> values
    time_zone: str
    format: Literal["json", "csv"]
    advertiser_id: str | None = None  # an admin's advertiserId filter

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start of startDate, start of the day after endDate) in the zone, as naive UTC."""
        zone = ZoneInfo(self.time_zone)
        first = datetime.combine(self.start, time(), zone)
        after = datetime.combine(self.end + timedelta(days=1), time(), zone)
        utc = ZoneInfo("UTC")
        return (
            first.astimezone(utc).replace(tzinfo=None),
            after.astimezone(utc).replace(tzinfo=None),
        )


@dataclass(frozen=True, slots=True)
class ReportRow:
    period: str | None  # local hour (ISO with offset), local date, or None for total
    dimensions: tuple[str, ...]  # in the query's group_by order
    counts: DayCounts


def parse_report_query(query: Mapping[str, str], *, default_time_zone: str) -> ReportQuery:
    """The report's parameters, or one 400 naming every bad one."""
    problems: list[str] = []
    fields: list[str] = []
    try:
        days = parse_date_range(query)
    except ValidationFailed as exc:
        problems.append(exc.message)
        fields.extend(exc.fields)
        days = None
    granularity = query.get("granularity", "day")
    if granularity not in ("hour", "day", "total"):
        problems.append("granularity: must be hour, day or total")
        fields.append("granularity")
    group_by = [g for g in query.get("groupBy", "").split(",") if g]
    unknown = [g for g in group_by if g not in DIMENSIONS]
    if unknown or len(set(group_by)) != len(group_by):
        problems.append(f"groupBy: each of {', '.join(DIMENSIONS)} at most once")
        fields.append("groupBy")
    filters: dict[str, tuple[str, ...]] = {}
    for name, (parameter, _column) in DIMENSIONS.items():
        raw = query.get(parameter)
        if raw is None:
            continue
        values = tuple(v for v in raw.split(",") if v)
        if not values or len(values) > _MAX_FILTER_VALUES or any(len(v) > 255 for v in values):
            problems.append(f"{parameter}: 1 to {_MAX_FILTER_VALUES} comma-separated values")
            fields.append(parameter)
        filters[name] = values
    zone = query.get("timeZone") or default_time_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append("timeZone: not an IANA time zone (e.g. America/New_York)")
        fields.append("timeZone")
    for name in ("campaign", "ad"):
        parameter = DIMENSIONS[name][0]
        if not all(is_uuid(v) for v in filters.get(name, ())):
            problems.append(f"{parameter}: UUIDs only")
            fields.append(parameter)
    advertiser = query.get("advertiserId")
    if advertiser is not None and not is_uuid(advertiser):
        problems.append("advertiserId: must be a UUID")
        fields.append("advertiserId")
    output = query.get("format", "json")
    if output not in ("json", "csv"):
        problems.append("format: must be json or csv")
        fields.append("format")
    if problems or days is None:
        raise ValidationFailed("; ".join(problems), fields)
    ordered = tuple(name for name in DIMENSIONS if name in group_by)
    return ReportQuery(
        days.start,
        days.end,
        granularity,  # type: ignore[arg-type]  # checked above
        ordered,
        filters,
        zone,
        output,  # type: ignore[arg-type]  # checked above
        advertiser,
    )


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def period_of(query: ReportQuery, utc_hour: datetime) -> str | None:
    """The local period a UTC hour (naive) counts in: its local hour, its local date, or None."""
    if query.granularity == "total":
        return None
    local = utc_hour.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(query.time_zone))
    return local.isoformat() if query.granularity == "hour" else local.date().isoformat()


def _row_json(query: ReportQuery, row: ReportRow) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if query.granularity != "total":
        body[query.granularity] = row.period
    body.update(zip((_FIELD[d] for d in query.group_by), row.dimensions, strict=True))
    c = row.counts
    ratios = _ratios(c)
    body.update(
        impressions=c.impressions,
        clicks=c.clicks,
        ctr=ratios["ctr"],
        spend=_money(c.spend_micros),
        spendMicros=c.spend_micros,
        cpc=ratios["cpc"],
        cpm=ratios["cpm"],
    )
    return body


def report_json(query: ReportQuery, rows: Sequence[ReportRow]) -> dict[str, Any]:
    """The JSON answer: the query as understood, the rows in order, and the totals."""
    total = DayCounts()
    for row in rows:
        total = total + row.counts
    totals = _row_json(
        ReportQuery(query.start, query.end, "total", (), {}, query.time_zone, "json"),
        ReportRow(None, (), total),
    )
    return {
        "startDate": query.start.isoformat(),
        "endDate": query.end.isoformat(),
        "timeZone": query.time_zone,
        "granularity": query.granularity,
        "groupBy": list(query.group_by),
        "rows": [_row_json(query, row) for row in rows],
        "totals": totals,
    }


def report_csv(query: ReportQuery, rows: Sequence[ReportRow]) -> str:
    """The same rows as CSV: a header, then one line per row (empty cells for null ratios)."""
    body = report_json(query, rows)["rows"]
    columns = (
        ([query.granularity] if query.granularity != "total" else [])
        + [_FIELD[d] for d in query.group_by]
        + ["impressions", "clicks", "ctr", "spend", "spendMicros", "cpc", "cpm"]
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in body:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return out.getvalue()
