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
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from shared_layer.kernel.models import WEEKDAYS, BidRequest, Campaign, Daypart, RuleType

__all__ = [
    "ELIGIBILITY_CHECKS",
    "RULE_CHECKS",
    "EligibilityCheck",
    "daypart_check",
    "failed_checks",
    "has_ads",
    "in_daypart",
    "is_active",
    "is_eligible",
    "matches_age_range",
    "matches_country",
    "matches_device_type",
    "matches_interest",
    "matches_key_values",
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


def matches_key_values(campaign: Campaign, request: BidRequest) -> bool:
    """Key-values: for every key the campaign names, the request sends one of its values
    (any-of), and the request sends none of its excluded values (none-of).

    ``keyValues: {"section": ["sports", "news"]}`` takes a request with
    ``{"section": ["sports"]}``; one without a section does not match.
    """
    sent = request.key_values
    for key, values in campaign.key_values.items():
        if set(values).isdisjoint(sent.get(key, ())):
            return False
    for key, values in campaign.excluded_key_values.items():
        if not set(values).isdisjoint(sent.get(key, ())):
            return False
    return True


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def in_daypart(daypart: Daypart | None, zone_name: str, now: datetime) -> bool:
    """Whether `now` (aware) falls on one of the daypart's days and hours, on the wall clock of
    the time zone `zone_name`. None: always.

    Across a change of daylight-saving time the local wall clock decides: a Monday 09:00-17:00
    Europe/Paris campaign runs 07:00-15:00 UTC in summer and 08:00-16:00 UTC in winter.
    """
    if daypart is None:
        return True
    local = now.astimezone(_zone(zone_name))
    return WEEKDAYS[local.weekday()] in daypart.days and local.hour in daypart.hours


def daypart_check(clock: Callable[[], datetime]) -> EligibilityCheck:
    """The eligibility check of dayparting at `clock`'s time (campaigns without one pass)."""

    def in_campaign_daypart(campaign: Campaign, request: BidRequest) -> bool:
        daypart = campaign.daypart
        return daypart is None or in_daypart(daypart, campaign.time_zone, clock())

    return in_campaign_daypart


RULE_CHECKS: Mapping[RuleType, EligibilityCheck] = {
    "country": matches_country,
    "device_type": matches_device_type,
    "interest": matches_interest,
    "age_range": matches_age_range,
    "placement": matches_placement,
}
"""The check for each rule type; every type in models.RULE_TYPES has one."""

ELIGIBILITY_CHECKS: tuple[EligibilityCheck, ...] = (
    is_active,
    has_ads,
    *RULE_CHECKS.values(),
    matches_key_values,
)
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
