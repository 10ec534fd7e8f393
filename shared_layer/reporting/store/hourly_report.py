"""What the hourly report reads: hourly_metrics (migration 0012), summed in PostgreSQL.

One statement per report: the rows of the range's UTC hours, filtered, grouped by the asked
dimensions and by the UTC hour (granularity hour), the local date (day) or nothing (total).
Only an advertiser's own campaigns when `advertiser_id` is given (a join on campaigns).

Column names come from `reporting.domain.hourly_report.DIMENSIONS` only; every value is a
parameter.

Example::

    rows = HourlyReportStore(database).rows(query, advertiser_id=None)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from shared_layer.kernel.money import parse_micros
from shared_layer.kernel.storage.postgres import Database
from shared_layer.reporting.domain.analytics import DayCounts
from shared_layer.reporting.domain.hourly_report import (
    DIMENSIONS,
    ReportQuery,
    ReportRow,
    is_uuid,
    period_of,
)

__all__ = ["HourlyReportStore"]

_PERIOD: Final = {
    "hour": "h.hour",
    "day": "CAST((h.hour AT TIME ZONE 'UTC') AT TIME ZONE :tz AS date)",
    "total": None,
}
_CASTS: Final = {"campaign_id": "uuid[]", "ad_id": "uuid[]"}


class HourlyReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def rows(self, query: ReportQuery, *, advertiser_id: str | None) -> list[ReportRow]:
        """The report's rows, ordered by period then dimensions."""
        if advertiser_id is not None and not is_uuid(advertiser_id):
            return []  # kernel.access.NOBODY: another advertiser's scope
        start, end = query.utc_bounds
        bucket = _PERIOD[query.granularity]
        columns = [f"h.{DIMENSIONS[d][1]}::text" for d in query.group_by]
        keys = ([bucket] if bucket else []) + columns
        where = ["h.hour >= :start", "h.hour < :end"]
        params: dict[str, Any] = {"start": start, "end": end, "tz": query.time_zone}
        for name, values in query.filters.items():
            column = DIMENSIONS[name][1]
            where.append(f"h.{column} = ANY(CAST(:f_{column} AS {_CASTS.get(column, 'text[]')}))")
            params[f"f_{column}"] = list(values)
        join = ""
        if advertiser_id is not None:
            join = (
                " JOIN campaigns c ON c.id = h.campaign_id AND c.advertiser_id = CAST(:adv AS uuid)"
            )
            params["adv"] = advertiser_id
        select = ", ".join([*keys, "sum(h.impressions)", "sum(h.clicks)", "sum(h.spend)"])
        group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        sql = (
            f"SELECT {select} FROM hourly_metrics h{join} "  # noqa: S608 (names from a fixed table)
            f"WHERE {' AND '.join(where)}{group}"
        )
        if query.granularity != "day":
            params.pop("tz")
        result = []
        for row in self._db.run(sql, **params):
            head = row[: len(keys)]
            impressions, clicks, spend = row[len(keys) :]
            counts = DayCounts(int(impressions or 0), int(clicks or 0), parse_micros(spend or 0))
            if counts == DayCounts():
                continue
            if query.granularity == "hour":
                period: str | None = period_of(query, head[0])
                dims = head[1:]
            elif query.granularity == "day":
                period = head[0].isoformat() if isinstance(head[0], date | datetime) else None
                dims = head[1:]
            else:
                period, dims = None, head
            result.append(ReportRow(period, tuple(str(d) for d in dims), counts))
        return result
