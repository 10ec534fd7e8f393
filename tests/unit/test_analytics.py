"""Campaign reports, pure: range validation, exact ratios from integers, the response shape."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.kernel.errors import ValidationFailed
from shared_layer.reporting.domain.analytics import (
    MAX_RANGE_DAYS,
    ZERO,
    DateRange,
    DayCounts,
    cache_entry,
    cache_key,
    cacheable,
    canonical_campaign_id,
    cpc_micros,
    cpm_micros,
    ctr_percent,
    parse_cache_entry,
    parse_date_range,
    plan_days,
    report_body,
)

D = date


# --- the date range ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        ("2025-11-29", "2025-11-29", 1),
        ("2025-11-01", "2025-11-29", 29),
        ("2024-01-01", "2024-12-31", 366),  # a leap year: the longest range allowed
        ("2025-01-01", "2026-01-01", 366),
        ("2024-02-28", "2024-03-01", 3),
        ("0001-01-01", "0001-01-05", 5),
        ("9999-12-01", "9999-12-31", 31),  # never steps past the last date there is
    ],
)
def test_valid_ranges(start: str, end: str, days: int) -> None:
    r = parse_date_range({"startDate": start, "endDate": end})
    assert (r.start.isoformat(), r.end.isoformat(), r.length) == (start, end, days)
    assert len(r.days()) == days and r.days()[0] == r.start and r.days()[-1] == r.end


@pytest.mark.parametrize(
    ("query", "fields", "says"),
    [
        ({}, ("startDate", "endDate"), "required"),
        ({"startDate": "2025-11-01"}, ("endDate",), "required"),
        ({"endDate": "2025-11-01"}, ("startDate",), "required"),
        ({"startDate": "", "endDate": "2025-11-01"}, ("startDate",), "required"),
        ({"startDate": "2025-11-1", "endDate": "2025-11-29"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-02-30", "endDate": "2025-03-01"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-13-01", "endDate": "2025-12-01"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "20251101", "endDate": "2025-11-29"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-W44-6", "endDate": "2025-11-29"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-11-01T00:00", "endDate": "2025-11-29"}, ("startDate",), "YYYY"),
        ({"startDate": " 2025-11-01", "endDate": "2025-11-29"}, ("startDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-11-01\n", "endDate": "2025-11-29"}, ("startDate",), "YYYY-MM-DD"),
        # Full-width digits are digits to \d, not to us.
        (
            {"startDate": "\uff12\uff10\uff12\uff15-11-01", "endDate": "2025-11-29"},
            ("startDate",),
            "YYYY-MM-DD",
        ),
        ({"startDate": "2025-11-29", "endDate": "bad"}, ("endDate",), "YYYY-MM-DD"),
        ({"startDate": "2025-11-30", "endDate": "2025-11-29"}, ("startDate",), "after"),
        ({"startDate": "2024-01-01", "endDate": "2025-01-01"}, ("endDate",), "366"),  # 367 days
        ({"startDate": "0001-01-01", "endDate": "9999-12-31"}, ("endDate",), "366"),
    ],
)
def test_invalid_ranges_are_a_400_naming_the_field(
    query: dict[str, str], fields: tuple[str, ...], says: str
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_date_range(query)
    assert raised.value.status == 400
    assert raised.value.fields == fields
    assert says in raised.value.message


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d", "3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d"),
        ("3F2B8D9C-1F1C-4A0E-8E4B-9A573F1F2B8D", "3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d"),
        ("campaign-456", None),
        ("3f2b8d9c1f1c4a0e8e4b9a573f1f2b8d", None),  # uuid.UUID would take it; ids never look so
        ("{3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d}", None),
        ("3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d\n", None),
        ("", None),
    ],
)
def test_only_a_uuid_can_name_a_campaign(raw: str, canonical: str | None) -> None:
    assert canonical_campaign_id(raw) == canonical


# --- where each day comes from --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "closed", "today", "future"),
    [
        (D(2025, 11, 1), D(2025, 11, 3), 3, False, 0),  # all past
        (D(2025, 11, 28), D(2025, 12, 2), 1, True, 3),  # spans today (2025-11-29)
        (D(2025, 11, 29), D(2025, 11, 29), 0, True, 0),  # today only
        (D(2025, 11, 30), D(2026, 1, 1), 0, False, 33),  # entirely to come
    ],
)
def test_days_split_around_today(
    start: date, end: date, closed: int, today: bool, future: int
) -> None:
    plan = plan_days(DateRange(start, end), D(2025, 11, 29))
    assert len(plan.closed) == closed and len(plan.future) == future
    assert plan.today == (D(2025, 11, 29) if today else None)
    assert sorted((*plan.closed, *plan.future, *([plan.today] if today else []))) == (
        DateRange(start, end).days()
    )


@pytest.mark.parametrize(
    ("now", "cached"),
    [
        (datetime(2025, 11, 29, 23, 59, tzinfo=UTC), False),  # the day itself
        (datetime(2025, 11, 30, 0, 9, 59, tzinfo=UTC), False),  # within the grace period
        (datetime(2025, 11, 30, 0, 10, tzinfo=UTC), True),
        (datetime(2025, 12, 30, tzinfo=UTC), True),
    ],
)
def test_a_day_is_cached_only_after_the_grace_period(now: datetime, cached: bool) -> None:
    assert cacheable(D(2025, 11, 29), now, grace_s=600) is cached


def test_cache_key_and_entry_round_trip() -> None:
    assert cache_key("c-1", D(2025, 11, 29)) == "analytics::c-1::2025-11-29"
    counts = DayCounts(50_000, 1_250, 125_000_000)
    assert parse_cache_entry(cache_entry(counts)) == counts
    assert parse_cache_entry(cache_entry(counts).encode()) == counts


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        b"[]",
        b'{"impressions": 1, "clicks": 0}',
        b'{"impressions": 1.5, "clicks": 0, "spendMicros": 0}',
        b'{"impressions": true, "clicks": 0, "spendMicros": 0}',
        b'{"impressions": -1, "clicks": 0, "spendMicros": 0}',
        b'{"impressions": "1", "clicks": 0, "spendMicros": 0}',
    ],
)
def test_an_unreadable_cache_entry_is_a_miss(raw: bytes | None) -> None:
    assert parse_cache_entry(raw) is None


# --- the arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clicks", "impressions", "ctr"),
    [
        (1_250, 50_000, Decimal("2.5")),  # the specification's example
        (1, 3, Decimal("33.3333")),
        (2, 3, Decimal("66.6667")),
        (1, 8, Decimal("12.5")),
        (1, 2_000_000, Decimal("0.0001")),  # 0.00005 % rounds half up
        (1, 2_000_001, Decimal("0")),  # just below half
        (0, 10, Decimal("0")),  # measured: no clicks
        (3, 2, Decimal("150")),  # clicks on yesterday's impressions: not capped
        (5, 0, None),  # no impressions: no rate
        (0, 0, None),
    ],
)
def test_ctr_in_percent(clicks: int, impressions: int, ctr: Decimal | None) -> None:
    assert ctr_percent(clicks, impressions) == ctr


@pytest.mark.parametrize(
    ("spend", "clicks", "cpc"),
    [
        (3_125_000_000, 31_250, 100_000),  # the specification: 3125.00 / 31250 = 0.10
        (1_000_001, 2, 500_001),  # half a micro rounds up
        (1_000_001, 3, 333_334),
        (1, 3, 0),
        (0, 5, 0),
        (5, 0, None),  # no clicks: no price per click
    ],
)
def test_cpc_in_micros(spend: int, clicks: int, cpc: int | None) -> None:
    assert cpc_micros(spend, clicks) == cpc


@pytest.mark.parametrize(
    ("spend", "impressions", "cpm"),
    [
        (3_125_000_000, 1_250_000, 2_500_000),  # the specification: 2.50
        (2_500, 1, 2_500_000),
        (10, 3, 3_333),
        (1, 2_000, 1),  # 0.5 micro rounds up
        (1, 2_001, 0),
        (0, 7, 0),
        (5, 0, None),
    ],
)
def test_cpm_in_micros(spend: int, impressions: int, cpm: int | None) -> None:
    assert cpm_micros(spend, impressions) == cpm


def _half_up(value: Fraction) -> int:
    """Non-negative values only: floor(value + 1/2)."""
    return int(value + Fraction(1, 2))


@given(
    st.integers(min_value=0, max_value=10**15),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=10**12),
)
def test_ratios_equal_exact_rational_arithmetic_rounded_half_up(
    spend: int, clicks: int, impressions: int
) -> None:
    if impressions:
        exact_ctr = Fraction(clicks * 100, impressions)
        assert ctr_percent(clicks, impressions) == Decimal(_half_up(exact_ctr * 10**4)).scaleb(-4)
        assert cpm_micros(spend, impressions) == _half_up(Fraction(spend * 1000, impressions))
    if clicks:
        assert cpc_micros(spend, clicks) == _half_up(Fraction(spend, clicks))


# --- the response -----------------------------------------------------------------------------

RANGE = DateRange(D(2025, 11, 27), D(2025, 11, 30))


def test_every_day_appears_in_order_with_zeros_and_exact_money() -> None:
    counts = {
        D(2025, 11, 28): DayCounts(3, 1, 100_000),  # 0.1
        D(2025, 11, 29): DayCounts(7, 0, 200_000),  # 0.2: 0.1 + 0.2 must be 0.3 exactly
    }
    body = report_body("c-1", RANGE, counts)
    assert body["campaignId"] == "c-1"
    assert body["dateRange"] == {"start": "2025-11-27", "end": "2025-11-30"}
    assert [d["date"] for d in body["dailyMetrics"]] == [
        "2025-11-27",
        "2025-11-28",
        "2025-11-29",
        "2025-11-30",
    ]
    empty, first, second, _ = body["dailyMetrics"]
    assert empty == {
        "date": "2025-11-27",
        "impressions": 0,
        "clicks": 0,
        "ctr": None,
        "spend": 0.0,
        "spendMicros": 0,
        "cpc": None,
        "cpm": None,
        "houseImpressions": 0,
    }
    assert first == {
        "date": "2025-11-28",
        "impressions": 3,
        "clicks": 1,
        "ctr": 33.3333,
        "spend": 0.1,
        "spendMicros": 100_000,
        "cpc": 0.1,
        "cpm": 33.333333,
        "houseImpressions": 0,
    }
    assert (second["ctr"], second["cpc"], second["cpm"]) == (0.0, None, 28.571429)
    assert body["summary"] == {
        "totalImpressions": 10,
        "houseImpressions": 0,
        "totalClicks": 1,
        "ctr": 10.0,
        "totalSpend": 0.3,
        "totalSpendMicros": 300_000,
        "cpc": 0.3,
        "cpm": 30.0,
    }
    assert body["partial"] is False and body["missingDates"] == []
    # In JSON the decimals are written as such: 0.3, never 0.30000000000000004.
    text = json.dumps(body)
    assert '"totalSpend": 0.3,' in text and '"cpm": 33.333333' in text


def test_a_house_campaigns_impressions_are_counted_as_house_impressions() -> None:
    counts = {D(2025, 11, 28): DayCounts(3, 1, 0), D(2025, 11, 29): DayCounts(2, 0, 0)}
    body = report_body("c-1", RANGE, counts, pacing={"tier": "house"})
    assert body["summary"]["houseImpressions"] == body["summary"]["totalImpressions"] == 5
    assert [d["houseImpressions"] for d in body["dailyMetrics"]] == [0, 3, 2, 0]
    assert body["summary"]["totalSpendMicros"] == 0


def test_the_seed_example_gives_the_seeds_numbers() -> None:
    day = D(2025, 11, 29)
    body = report_body(
        "campaign-456", DateRange(day, day), {day: DayCounts(1_250_000, 31_250, 3_125_000_000)}
    )
    assert body["summary"] == {
        "totalImpressions": 1_250_000,
        "houseImpressions": 0,
        "totalClicks": 31_250,
        "ctr": 2.5,
        "totalSpend": 3125.0,
        "totalSpendMicros": 3_125_000_000,
        "cpc": 0.1,
        "cpm": 2.5,
    }


def test_missing_days_are_left_out_listed_and_not_summed() -> None:
    counts = {D(2025, 11, 27): DayCounts(10, 1, 5), D(2025, 11, 30): DayCounts(1, 0, 7)}
    body = report_body("c-1", RANGE, counts, missing=[D(2025, 11, 29), D(2025, 11, 28)])
    assert body["partial"] is True
    assert body["missingDates"] == ["2025-11-28", "2025-11-29"]
    assert [d["date"] for d in body["dailyMetrics"]] == ["2025-11-27", "2025-11-30"]
    assert body["summary"]["totalImpressions"] == 11
    assert body["summary"]["totalSpendMicros"] == 12


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9), st.integers(0, 10**7), st.integers(0, 10**15)
        ),  # a day's spend is at most a daily budget (10^9 units)
        min_size=1,
        max_size=30,
    )
)
def test_totals_are_exact_sums_and_every_amount_reads_back_exactly(
    days: list[tuple[int, int, int]],
) -> None:
    start = D(2025, 1, 1)
    counts = {start + timedelta(i): DayCounts(*values) for i, values in enumerate(days)}
    r = DateRange(start, start + timedelta(len(days) - 1))
    body = json.loads(json.dumps(report_body("c", r, counts)), parse_float=Decimal)
    assert body["summary"]["totalImpressions"] == sum(i for i, _, _ in days)
    assert body["summary"]["totalClicks"] == sum(c for _, c, _ in days)
    assert body["summary"]["totalSpendMicros"] == sum(s for _, _, s in days)
    for row, (_, _, spend) in zip(body["dailyMetrics"], days, strict=True):
        assert row["spend"] == Decimal(spend).scaleb(-6)
        assert row["spendMicros"] == spend


def test_huge_totals_still_answer_and_micros_stay_exact() -> None:
    days = DateRange(D(2025, 1, 1), D(2025, 12, 31)).days()
    spend = 999_999_999_999_999  # one micro short of 10^9 units, every day
    body = report_body("c", DateRange(days[0], days[-1]), {d: DayCounts(1, 1, spend) for d in days})
    assert body["summary"]["totalSpendMicros"] == 365 * spend
    assert isinstance(body["summary"]["totalSpend"], float)  # nearest double beyond 15 digits


def test_zero_is_the_identity_of_counts() -> None:
    c = DayCounts(1, 2, 3)
    assert c + ZERO == c and ZERO + ZERO == ZERO and c + c == DayCounts(2, 4, 6)


def test_the_longest_range_has_every_day() -> None:
    r = DateRange(D(2024, 1, 1), D(2024, 12, 31))
    assert r.length == MAX_RANGE_DAYS
    assert len(report_body("c", r, {})["dailyMetrics"]) == MAX_RANGE_DAYS
