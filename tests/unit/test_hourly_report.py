"""The hourly report's parameters and answer, pure: what a 400 says, local periods, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.reporting.domain.analytics import DayCounts
from shared_layer.reporting.domain.hourly_report import (
    ReportRow,
    parse_report_query,
    period_of,
    report_csv,
    report_json,
)

DAYS = {"startDate": "2026-11-01", "endDate": "2026-11-01"}


def parse(**query: str):
    return parse_report_query({**DAYS, **query}, default_time_zone="Europe/Paris")


def test_defaults_are_day_no_grouping_json_and_the_advertisers_zone():
    q = parse()
    assert (q.granularity, q.group_by, q.format, q.time_zone) == ("day", (), "json", "Europe/Paris")
    assert parse(groupBy="country,campaign").group_by == ("campaign", "country")  # fixed order


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"groupBy": "user"}, "groupBy"),
        ({"groupBy": "ad,ad"}, "groupBy"),
        ({"campaignId": "not-a-uuid"}, "campaignId"),
        ({"adId": ""}, "adId"),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"format": "xml"}, "format"),
        ({"advertiserId": "x"}, "advertiserId"),
        ({"startDate": "2026-11-02"}, "startDate"),
    ],
)
def test_every_bad_parameter_is_a_400_that_names_it(query, named):
    with pytest.raises(ValidationFailed) as caught:
        parse(**query)
    assert named in caught.value.fields


def test_the_range_is_local_days_in_utc_across_a_daylight_saving_change():
    q = parse(timeZone="America/New_York")  # 2026-11-01: clocks go back at 02:00 (EDT -> EST)
    assert q.utc_bounds == (datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5))  # 25 hours
    hourly = parse(timeZone="America/New_York", granularity="hour")
    first, second = (period_of(hourly, datetime(2026, 11, 1, h)) for h in (5, 6))
    assert (first, second) == ("2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00")
    assert period_of(parse(timeZone="America/New_York"), datetime(2026, 11, 2, 4)) == "2026-11-01"


def test_csv_has_the_json_rows_and_empty_cells_for_null_ratios():
    q = parse(groupBy="country")
    rows = [
        ReportRow("2026-11-01", ("US",), DayCounts(4, 1, 10_000)),
        ReportRow("2026-11-01", ("DE",), DayCounts(0, 1, 0)),
    ]
    body = report_json(q, rows)
    assert body["totals"]["impressions"] == 4 and body["totals"]["clicks"] == 2
    assert body["rows"][0] == {
        "day": "2026-11-01", "country": "US", "impressions": 4, "clicks": 1, "ctr": 25.0,
        "spend": 0.01, "spendMicros": 10_000, "cpc": 0.01, "cpm": 2.5,
    }  # fmt: skip
    lines = list(csv.reader(io.StringIO(report_csv(q, rows))))
    assert lines[0] == ["day", "country", "impressions", "clicks", "ctr", "spend",
                        "spendMicros", "cpc", "cpm"]  # fmt: skip
    assert lines[2] == ["2026-11-01", "DE", "0", "1", "", "0.0", "0", "0.0", ""]
    assert date.fromisoformat(lines[1][0]) == date(2026, 11, 1)
