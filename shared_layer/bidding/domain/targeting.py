"""Which campaigns may bid on a request: a list of independent, pure eligibility checks.

Each check answers one question, ``check(campaign, request) -> bool``, with no I/O and no shared
state, so that new rules (frequency caps, pacing, floors per placement) are added as one more
function in `ELIGIBILITY_CHECKS` without touching the others, and each is tested alone.

Semantics of targeting rules, the same for every rule type: a campaign with no rule of a type is
unrestricted on it; a campaign with rules of a type needs at least one of them to match. A request
that does not say something (no countryCode, no age) matches only campaigns unrestricted on it.

Example::

    eligible = [c for c in campaigns if is_eligible(c, request)]

The auction (`shared_layer.bidding.domain.auction`) does not call these on every campaign: its index
narrows the candidates first, then runs every check on each candidate it yields, so the checks stay
the single definition of "eligible".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from shared_layer.kernel.models import BidRequest, Campaign, RuleType

__all__ = [
    "ELIGIBILITY_CHECKS",
    "RULE_CHECKS",
    "EligibilityCheck",
    "failed_checks",
    "has_ads",
    "is_active",
    "is_eligible",
    "matches_age_range",
    "matches_country",
    "matches_device_type",
    "matches_interest",
    "matches_placement",
]

EligibilityCheck = Callable[[Campaign, BidRequest], bool]


def is_active(campaign: Campaign, request: BidRequest) -> bool:
    """Paused and ended campaigns never bid."""
    return campaign.status == "active"


def has_ads(campaign: Campaign, request: BidRequest) -> bool:
    """A campaign without an ad has nothing to show."""
    return bool(campaign.ads)


def matches_country(campaign: Campaign, request: BidRequest) -> bool:
    wanted = campaign.targeting.get("country")
    return wanted is None or request.country_code in wanted


def matches_device_type(campaign: Campaign, request: BidRequest) -> bool:
    wanted = campaign.targeting.get("device_type")
    return wanted is None or request.device_type in wanted


def matches_interest(campaign: Campaign, request: BidRequest) -> bool:
    """At least one of the campaign's interests is among the user's (exact, case-sensitive)."""
    wanted = campaign.targeting.get("interest")
    return wanted is None or not wanted.isdisjoint(request.interests)


def matches_age_range(campaign: Campaign, request: BidRequest) -> bool:
    """The user's age lies in one of the campaign's inclusive ranges."""
    ranges = campaign.age_ranges
    if not ranges:
        return True
    age = request.age
    return age is not None and any(low <= age <= high for low, high in ranges)


def matches_placement(campaign: Campaign, request: BidRequest) -> bool:
    """Placement rules name the placementIds where the campaign wants to appear."""
    wanted = campaign.targeting.get("placement")
    return wanted is None or request.placement_id in wanted


RULE_CHECKS: Mapping[RuleType, EligibilityCheck] = {
    "country": matches_country,
    "device_type": matches_device_type,
    "interest": matches_interest,
    "age_range": matches_age_range,
    "placement": matches_placement,
}
"""The check for each rule type; every type in models.RULE_TYPES has one."""

ELIGIBILITY_CHECKS: tuple[EligibilityCheck, ...] = (is_active, has_ads, *RULE_CHECKS.values())
"""Every check a campaign must pass to bid, cheapest and most selective first."""


def is_eligible(
    campaign: Campaign,
    request: BidRequest,
    checks: Iterable[EligibilityCheck] = ELIGIBILITY_CHECKS,
) -> bool:
    """True when `campaign` passes every check for `request`."""
    return all(check(campaign, request) for check in checks)


def failed_checks(
    campaign: Campaign,
    request: BidRequest,
    checks: Iterable[EligibilityCheck] = ELIGIBILITY_CHECKS,
) -> list[str]:
    """Names of the checks `campaign` fails, to explain a no-bid in logs and tests.

    >>> failed_checks(paused_campaign, request)  # doctest: +SKIP
    ['is_active']
    """
    return [check.__name__ for check in checks if not check(campaign, request)]
