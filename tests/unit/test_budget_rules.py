"""The budget ledger's pure part: key names, the UTC day, the charge rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_layer.bidding.domain.budget import (
    ChargeOutcome,
    ChargeResult,
    RefusalMemo,
    check_charge,
)
from shared_layer.bidding.store.budget_ledger import daily_spent_key, lifetime_spent_key
from shared_layer.kernel.clock import utc_day
from shared_layer.kernel.storage.shards import Shards

CHARGED = ChargeOutcome.CHARGED
DAILY = ChargeOutcome.DAILY_BUDGET_EXHAUSTED
LIFETIME = ChargeOutcome.LIFETIME_BUDGET_EXHAUSTED


def test_keys_carry_the_shard_tag_and_the_campaign() -> None:
    day = date(2025, 11, 29)
    assert daily_spent_key("c-1", day) == "budget::spent::{shard0of1}::c-1::2025-11-29"
    assert lifetime_spent_key("c-1") == "budget::spent::{shard0of1}::c-1::lifetime"
    shard = Shards(16).of("c-1")
    assert (
        lifetime_spent_key("c-1", Shards(16))
        == f"budget::spent::{{shard{shard}of16}}::c-1::lifetime"
    )


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2025, 11, 29, 23, 59, 59, 999_999, tzinfo=UTC), date(2025, 11, 29)),
        (datetime(2025, 11, 30, 0, 0, tzinfo=UTC), date(2025, 11, 30)),
        # 23:30 in New York (UTC-5) is already tomorrow in UTC.
        (datetime(2025, 11, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5))), date(2025, 11, 30)),
        # 00:30 in Berlin (UTC+1) is still yesterday in UTC.
        (datetime(2025, 11, 30, 0, 30, tzinfo=timezone(timedelta(hours=1))), date(2025, 11, 29)),
    ],
)
def test_the_day_is_the_utc_day(moment: datetime, day: date) -> None:
    assert utc_day(lambda: moment) == day


def test_naive_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_day(lambda: datetime(2025, 11, 29, 12, 0))


@pytest.mark.parametrize(
    ("price", "daily_spent", "lifetime_spent", "daily_budget", "lifetime_budget", "outcome"),
    [
        (2_500, 0, 0, 10_000, None, CHARGED),
        (2_500, 7_500, 7_500, 10_000, None, CHARGED),  # exactly fills the day
        (2_500, 7_501, 7_501, 10_000, None, DAILY),
        (2_500, 0, 0, 2_499, None, DAILY),
        (2_500, 0, 0, 0, None, DAILY),
        (2_500, 0, 97_500, 10_000, 100_000, CHARGED),  # exactly fills the lifetime
        (2_500, 0, 97_501, 10_000, 100_000, LIFETIME),
        (2_500, 9_000, 99_000, 10_000, 100_000, LIFETIME),  # both full: lifetime is final
    ],
)
def test_charge_rule(
    price: int,
    daily_spent: int,
    lifetime_spent: int,
    daily_budget: int,
    lifetime_budget: int | None,
    outcome: ChargeOutcome,
) -> None:
    assert (
        check_charge(
            price_micros=price,
            daily_spent_micros=daily_spent,
            lifetime_spent_micros=lifetime_spent,
            daily_budget_micros=daily_budget,
            lifetime_budget_micros=lifetime_budget,
        )
        is outcome
    )


@given(
    price=st.integers(1, 10**6),
    daily_spent=st.integers(0, 10**7),
    extra=st.integers(0, 10**7),
    daily_budget=st.integers(0, 10**7),
    lifetime_budget=st.one_of(st.none(), st.integers(0, 2 * 10**7)),
)
def test_a_charge_never_takes_spend_past_a_limit(
    price: int, daily_spent: int, extra: int, daily_budget: int, lifetime_budget: int | None
) -> None:
    lifetime_spent = daily_spent + extra
    outcome = check_charge(
        price_micros=price,
        daily_spent_micros=daily_spent,
        lifetime_spent_micros=lifetime_spent,
        daily_budget_micros=daily_budget,
        lifetime_budget_micros=lifetime_budget,
    )
    fits_day = daily_spent + price <= daily_budget
    fits_life = lifetime_budget is None or lifetime_spent + price <= lifetime_budget
    assert (outcome is CHARGED) == (fits_day and fits_life)


def test_a_refusal_holds_for_the_day_and_ends_with_a_new_day_budget_or_cpm() -> None:
    from shared_layer.kernel.models import Campaign

    now = [datetime(2025, 11, 29, 23, 0, tzinfo=UTC)]
    memo = RefusalMemo(clock=lambda: now[0])
    campaign = Campaign(
        id="c-1", advertiser_id="a-1", name="n", status="active",
        cpm_micros=2_000_000, daily_budget_micros=10_000,
    )  # fmt: skip
    refused = ChargeResult(DAILY, 10_000, 10_000)
    assert memo.eligible(campaign, None)
    memo.remember(campaign, refused)
    assert not memo.eligible(campaign, None)
    assert memo.eligible(campaign.model_copy(update={"daily_budget_micros": 20_000}), None)
    assert memo.eligible(campaign.model_copy(update={"cpm_micros": 3_000_000}), None)
    now[0] += timedelta(hours=1)  # 00:00 UTC: a new daily budget
    assert memo.eligible(campaign, None)


def test_the_refusal_memo_is_bounded() -> None:
    from shared_layer.kernel.models import Campaign

    memo = RefusalMemo(max_entries=3)
    campaigns = [
        Campaign(
            id=f"c-{n}",
            advertiser_id="a",
            name="n",
            status="active",
            cpm_micros=2_000_000,
            daily_budget_micros=0,
        )
        for n in range(4)
    ]
    for campaign in campaigns:
        memo.remember(campaign, ChargeResult(DAILY, 0, 0))
    assert [memo.eligible(c, None) for c in campaigns] == [True, True, True, False]
