"""The decision explainer: for each campaign that could have appeared on a request's placement,
the first reason it did not win (pure).

"Why didn't my ad serve?" is answered after the auction, from what the auction already knows:
the same eligibility checks (run again, they are pure), the charges the ledger refused during
this request, the floor, and the winners. Nothing is charged or recorded here, so an explained
request moves exactly the money an unexplained one does.

Reasons, in the order they are looked for: ``targeting`` (a targeting rule or key-value),
``daypart``, ``budget``, ``pacing``, ``frequency-cap``, ``floor``, ``duplicate`` (a winner of an
earlier slot at the duplicate level, or a shared exclusion label), ``lower-bid``; the winner is
``won``. On a several-slot request each slot is explained on its own (a slot's sizes count as
targeting). Only campaigns whose placement rules allow the request's placement are listed (the
others could never appear there), at most `MAX_EXPLAINED`, best ranked first.

Example::

    explain(index, request, refused={"c-2": ChargeOutcome.PACED}, winners=["c-1"], ...)
    # {"candidates": [{"campaignId": "c-1", "reason": "won"},
    #                 {"campaignId": "c-2", "reason": "pacing"}], "truncated": 0}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from shared_layer.bidding.domain.auction import AuctionIndex
from shared_layer.bidding.domain.budget import BUDGET_REFUSALS, ChargeOutcome
from shared_layer.bidding.domain.targeting import (
    RULE_CHECKS,
    EligibilityCheck,
    matches_key_values,
    matches_placement,
)
from shared_layer.kernel.models import BidRequest, Campaign
from shared_layer.kernel.money import Micros

__all__ = ["MAX_EXPLAINED", "explain"]

MAX_EXPLAINED: Final = 100

_TARGETING: Final = (
    *(check for kind, check in RULE_CHECKS.items() if kind != "placement"),
    matches_key_values,
)
_REFUSAL_REASONS: Final = {
    ChargeOutcome.PACED: "pacing",
    ChargeOutcome.FREQUENCY_CAPPED: "frequency-cap",
    **dict.fromkeys(BUDGET_REFUSALS, "budget"),
}


def explain(
    index: AuctionIndex,
    request: BidRequest,
    *,
    winners: Sequence[str],
    refused: Mapping[str, ChargeOutcome],
    daypart: EligibilityCheck,
    budget_memo: EligibilityCheck,
    pacing_memo: EligibilityCheck,
    floor_micros: Micros,
    duplicate: Callable[[Campaign], bool] = lambda _campaign: False,
    targeting: Sequence[EligibilityCheck] = (),
) -> dict[str, Any]:
    """The first reason each campaign that could appear on the placement did not win;
    `targeting` adds checks that count as targeting (a slot's sizes)."""
    rules = (*_TARGETING, *targeting)
    rows: list[dict[str, str]] = []
    truncated = 0
    for campaign in index.campaigns:
        if not matches_placement(campaign, request):
            continue
        if len(rows) >= MAX_EXPLAINED:
            truncated += 1
            continue
        rows.append(
            {
                "campaignId": campaign.id,
                "tier": campaign.tier,
                "reason": _first_reason(
                    campaign,
                    request,
                    rules,
                    winners,
                    refused,
                    daypart,
                    budget_memo,
                    pacing_memo,
                    floor_micros,
                    duplicate,
                ),
            }
        )
    return {"candidates": rows, "truncated": truncated}


def _first_reason(
    campaign: Campaign,
    request: BidRequest,
    rules: Sequence[EligibilityCheck],
    winners: Sequence[str],
    refused: Mapping[str, ChargeOutcome],
    daypart: EligibilityCheck,
    budget_memo: EligibilityCheck,
    pacing_memo: EligibilityCheck,
    floor_micros: Micros,
    duplicate: Callable[[Campaign], bool],
) -> str:
    if campaign.id in winners:
        return "won"
    if not all(check(campaign, request) for check in rules):
        return "targeting"
    if not daypart(campaign, request):
        return "daypart"
    outcome = refused.get(campaign.id)
    if outcome is not None:
        return _REFUSAL_REASONS.get(outcome, "budget")
    if not budget_memo(campaign, request):
        return "budget"
    if not pacing_memo(campaign, request):
        return "pacing"
    if campaign.tier == "standard" and campaign.cpm_micros < floor_micros:
        return "floor"
    if duplicate(campaign):
        return "duplicate"
    return "lower-bid"
