"""The budget rule and the seam the auction charges through; the Redis ledger is in stores.

Why a seam: the auction decides who may win; only the ledger knows whether the winner can still
pay. `BudgetLedger` is the narrow contract (one method, `charge`) that the bid function uses;
`shared_layer.bidding.store.budget_ledger.RedisBudgetLedger` is the real one, and unit tests use an
in-memory double of this contract.

The rule (`check_charge`, pure): a charge of `price` succeeds only if BOTH the day's spend plus
price stays within the daily budget AND the lifetime spend plus price stays within the lifetime
budget (when there is one); then both are increased by price, otherwise neither. In Redis the
same rule runs as ONE Lua script (bidding/store/budget_charge.lua), so that the check and both
increments are a single atomic step: concurrent bids from any number of replicas can never
overspend.

`RefusalMemo` remembers, per process, the campaigns whose budget refused today, so the auction
skips them without asking Redis again.

Example::

    check_charge(price_micros=2_500, daily_spent_micros=7_500, lifetime_spent_micros=7_500,
                 daily_budget_micros=10_000, lifetime_budget_micros=None)   # CHARGED
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from shared_layer.bidding.domain.pacing import campaign_day
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.money import Micros

__all__ = [
    "BUDGET_REFUSALS",
    "BudgetLedger",
    "ChargeOutcome",
    "ChargeResult",
    "RefusalMemo",
    "check_charge",
]


class ChargeOutcome(enum.Enum):
    CHARGED = 0
    DAILY_BUDGET_EXHAUSTED = 1
    LIFETIME_BUDGET_EXHAUSTED = 2
    LEDGER_NOT_READY = 3  # the script's answer only; `charge` raises LedgerNotReady for it
    # ahead of its pacing curve (bidding.domain.pacing): may bid again once the curve caught up
    PACED = 4
    FREQUENCY_CAPPED = 5  # this user had the cap's impressions in the window: others may bid


BUDGET_REFUSALS = frozenset(
    {ChargeOutcome.DAILY_BUDGET_EXHAUSTED, ChargeOutcome.LIFETIME_BUDGET_EXHAUSTED}
)
"""Refusals that hold for the rest of the campaign's day (the refusal memo keeps these only)."""


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What a charge did, and the spend it saw (after the charge when it succeeded)."""

    outcome: ChargeOutcome
    daily_spent_micros: Micros
    lifetime_spent_micros: Micros

    @property
    def charged(self) -> bool:
        return self.outcome is ChargeOutcome.CHARGED


def check_charge(
    *,
    price_micros: Micros,
    daily_spent_micros: Micros,
    lifetime_spent_micros: Micros,
    daily_budget_micros: Micros,
    lifetime_budget_micros: Micros | None,
) -> ChargeOutcome:
    """The budget rule, pure; bidding/store/budget_charge.lua is its atomic twin in Redis.

    The lifetime limit is checked first: when it refuses, the campaign is finished for good,
    which is the more useful thing for a caller to learn.

    >>> check_charge(price_micros=2_500, daily_spent_micros=7_500, lifetime_spent_micros=7_500,
    ...              daily_budget_micros=10_000, lifetime_budget_micros=None)
    <ChargeOutcome.CHARGED: 0>
    """
    if lifetime_budget_micros is not None and (
        lifetime_spent_micros + price_micros > lifetime_budget_micros
    ):
        return ChargeOutcome.LIFETIME_BUDGET_EXHAUSTED
    if daily_spent_micros + price_micros > daily_budget_micros:
        return ChargeOutcome.DAILY_BUDGET_EXHAUSTED
    return ChargeOutcome.CHARGED


class BudgetLedger(Protocol):
    """The seam the bid function charges through."""

    def charge(
        self,
        campaign: Campaign,
        price_micros: Micros,
        record: Sequence[bytes] = (),
        *,
        user_id: str | None = None,
    ) -> ChargeResult:
        """Charge `price_micros` to `campaign` if both budgets allow it; never partially.

        In the same step the campaign's pacing may refuse (``PACED``) and, for `user_id`, its
        frequency cap (``FREQUENCY_CAPPED``); a capped impression is recorded for the cap.

        `record` (outbox fields, `kernel.storage.outbox.outbox_fields`) is the event of this
        impression: when given, it is appended to the event outbox in the same atomic step as the
        charge, and only if the charge succeeds.
        """
        ...


class RefusalMemo:
    """Campaigns whose budget refused a charge today, skipped without asking Redis again.

    Spend only grows within the campaign's day, so a budget refusal holds until the day, a
    budget, the CPM or the time zone changes: those are part of the key, so a new day or an
    edited campaign asks Redis again. Pacing and frequency refusals are not kept here (they pass
    with time or with another user; bidding.domain.pacing.PacingMemo keeps the former).
    `eligible` is an auction eligibility check; `remember` is the auction's `on_refused`. Per
    process and bounded (forgotten wholesale past `max_entries`: Redis is asked again).
    """

    def __init__(self, clock: Clock = utc_now, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._refused: set[tuple[str, int, int | None, int, str, date]] = set()

    def _key(self, campaign: Campaign) -> tuple[str, int, int | None, int, str, date]:
        budgets = (campaign.daily_cap_micros, campaign.lifetime_cap_micros)
        day = campaign_day(campaign, self._clock()).day
        return (campaign.id, *budgets, campaign.cpm_micros, campaign.time_zone, day)

    def eligible(self, campaign: Campaign, request: object) -> bool:
        return not self._refused or self._key(campaign) not in self._refused

    def remember(self, campaign: Campaign, charge: ChargeResult) -> None:
        if charge.outcome not in BUDGET_REFUSALS:
            return
        if len(self._refused) >= self._max:
            self._refused.clear()
        self._refused.add(self._key(campaign))
