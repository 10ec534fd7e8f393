"""GET /report on the analytics function: the hourly report, for a key that may read reports.

An advertiser's or reporting key sees its own campaigns' rows only (whatever it filters on);
an admin key sees every advertiser's, or one advertiser's with ``advertiserId``. The time zone
defaults to the key's advertiser's (`time_zone_of`), else UTC. See
`reporting.domain.hourly_report` for the parameters and the answer.
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.kernel.access import Caller, advertiser_scope, require
from shared_layer.kernel.http import Request, Response, Router, json_response
from shared_layer.reporting.domain.hourly_report import (
    parse_report_query,
    report_csv,
    report_json,
)
from shared_layer.reporting.store.hourly_report import HourlyReportStore

__all__ = ["add_report_routes"]


def add_report_routes(
    router: Router,
    store: HourlyReportStore,
    authenticate: Callable[[Request], Caller],
    time_zone_of: Callable[[Caller], str | None],
) -> None:
    @router.route("GET", "/report")
    def report(request: Request) -> Response:
        caller = authenticate(request)
        require(caller, "report")
        query = parse_report_query(request.query, default_time_zone=time_zone_of(caller) or "UTC")
        rows = store.rows(query, advertiser_id=advertiser_scope(caller, query.advertiser_id))
        headers = {"Cache-Control": "no-store"}
        if query.format == "csv":
            return {
                "statusCode": 200,
                "body": report_csv(query, rows),
                "headers": {
                    **json_response(200, {}, request, headers)["headers"],
                    "Content-Type": "text/csv; charset=utf-8",
                    "Content-Disposition": 'attachment; filename="report.csv"',
                },
            }
        return json_response(200, report_json(query, rows), request, headers)
