"""bidding.domain.pacing: the curves, the campaign's day in its time zone, the pacing limit,
resume_at."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.bidding.domain.budget import ChargeOutcome, ChargeResult, RefusalMemo
from shared_layer.bidding.domain.pacing import (
    PacingMemo,
    campaign_day,
    expected_spend,
    pacing_limit,
    resume_at,
)
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import Campaign, parse

from .auction_fixtures import make_campaign

BUDGET = 100_000_000
DAY = datetime(2026, 12, 3, tzinfo=UTC)


def _campaign(pacing: str = "even", time_zone: str = "UTC", **fields: object) -> Campaign:
    return make_campaign(
        "c-1", daily_budget_micros=BUDGET, pacing=pacing, time_zone=time_zone, **fields
    )


@pytest.mark.parametrize(
    ("pacing", "hours", "expected"),
    [
        ("even", 0, 0),
        ("even", 6, 25_000_000),
        ("even", 12, 50_000_000),
        ("even", 18, 75_000_000),
        ("frontloaded", 0, 0),
        ("frontloaded", 12, 62_500_000),
        ("frontloaded", 18, 84_375_000),
        ("asap", 0, BUDGET),
        ("asap", 12, BUDGET),
    ],
)
def test_the_curves_at_known_hours(pacing: str, hours: int, expected: int) -> None:
    assert expected_spend(_campaign(pacing), DAY + timedelta(hours=hours)) == expected


@given(st.integers(min_value=0, max_value=86_400 * 1_000_000 - 1))
def test_frontloaded_is_ahead_of_even_and_both_stay_within_the_budget(micros: int) -> None:
    now = DAY + timedelta(microseconds=micros)
    even = expected_spend(_campaign("even"), now)
    front = expected_spend(_campaign("frontloaded"), now)
    assert 0 <= even <= front <= BUDGET


@given(st.integers(min_value=0, max_value=86_400 * 1_000_000 - 2))
def test_the_curves_never_go_down(micros: int) -> None:
    for pacing in ("even", "frontloaded"):
        campaign = _campaign(pacing)
        now = DAY + timedelta(microseconds=micros)
        assert expected_spend(campaign, now) <= expected_spend(
            campaign, now + timedelta(microseconds=1)
        )


def test_the_day_is_the_campaigns_own_in_its_time_zone() -> None:
    campaign = _campaign(time_zone="America/New_York")
    # 03:00 UTC on 3 December is 22:00 on 2 December in New York (EST, UTC-5)
    bounds = campaign_day(campaign, datetime(2026, 12, 3, 3, 0, tzinfo=UTC))
    assert bounds.day == date(2026, 12, 2)
    assert bounds.start == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    # at New York's noon half of the even budget is expected
    assert expected_spend(campaign, datetime(2026, 12, 3, 17, 0, tzinfo=UTC)) == BUDGET // 2


def test_a_23_hour_daylight_saving_day_is_still_one_whole_day() -> None:
    campaign = _campaign(time_zone="America/New_York")
    # 8 March 2026: clocks go from 02:00 to 03:00; local noon is 11 real hours after midnight
    noon = datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # 12:00 EDT
    assert campaign_day(campaign, noon).length_us == 23 * 3600 * 1_000_000
    assert expected_spend(campaign, noon) == BUDGET * 11 // 23


def test_the_pacing_limit_allows_one_price_above_the_curve_and_never_the_budget() -> None:
    assert pacing_limit(_campaign("asap"), DAY, 2_500) is None
    assert pacing_limit(_campaign("even"), DAY + timedelta(hours=12), 2_500) == 50_002_500
    assert pacing_limit(_campaign("even"), DAY + timedelta(hours=23, minutes=59), 10**9) == BUDGET


def test_resume_at_is_when_the_curve_reaches_the_spend() -> None:
    assert resume_at(_campaign("even"), DAY, 50_000_000) == DAY + timedelta(hours=12)
    assert resume_at(_campaign("frontloaded"), DAY, 62_500_000) == DAY + timedelta(hours=12)
    assert resume_at(_campaign("even"), DAY, BUDGET) == DAY + timedelta(days=1)
    later = DAY + timedelta(hours=13)
    assert resume_at(_campaign("even"), later, 50_000_000) == later  # behind: at once


def test_the_pacing_memo_skips_until_the_curve_caught_up_or_the_campaign_changed() -> None:
    now = [DAY + timedelta(hours=6)]
    memo = PacingMemo(clock=lambda: now[0])
    campaign = _campaign("even")
    memo.remember(campaign, 50_000_000)  # ahead: half the budget at 06:00
    assert not memo.eligible(campaign, None)
    assert memo.eligible(campaign.model_copy(update={"pacing": "asap"}), None)
    memo.remember(campaign, 50_000_000)
    now[0] = DAY + timedelta(hours=12)
    assert memo.eligible(campaign, None)


def test_the_refusal_memo_keeps_budget_refusals_only() -> None:
    memo = RefusalMemo(clock=lambda: DAY)
    campaign = _campaign("even")
    memo.remember(campaign, ChargeResult(ChargeOutcome.PACED, 1, 1))
    memo.remember(campaign, ChargeResult(ChargeOutcome.FREQUENCY_CAPPED, 1, 1))
    assert memo.eligible(campaign, None)
    memo.remember(campaign, ChargeResult(ChargeOutcome.DAILY_BUDGET_EXHAUSTED, 1, 1))
    assert not memo.eligible(campaign, None)


def test_a_campaign_refuses_unknown_time_zones_and_bad_frequency_caps() -> None:
    base = _campaign().model_dump(by_alias=True)
    with pytest.raises(ValidationFailed, match="timeZone: must be an IANA time zone"):
        parse(Campaign, {**base, "timeZone": "Mars/Olympus"})
    with pytest.raises(ValidationFailed, match=r"frequencyCap\.impressions"):
        parse(Campaign, {**base, "frequencyCap": {"impressions": 0, "windowSeconds": 3600}})
    capped = parse(Campaign, {**base, "frequencyCap": {"impressions": 3, "windowSeconds": 86400}})
    assert capped.frequency_cap is not None and capped.frequency_cap.impressions == 3
