"""The domain's data: campaigns, their ads and targeting rules, and the /bid request and response.

Why pydantic models with strict scalar types: these objects come from the outside (a publisher's
request, an admin's campaign, a Redis cache entry) and every field is checked once, here, where it
enters; past this point code trusts them. Strict means a JSON ``"25"`` is not an age and ``true``
is not a number. Unknown fields are refused rather than ignored, so that a misspelt
``countrycode`` is a 400 that names it, not an untargeted auction. Invalid input raises our
`ValidationFailed` with a message naming each bad field (`parse`), never pydantic's error.

JSON uses the specification's camelCase names (``userId``, ``placementId``); Python uses snake_case.
Money is integer micros inside (`shared_layer.kernel.money`); only `BidResponse` writes the
specification's decimal ``bidPrice`` at the JSON edge.

Example::

    request = parse(BidRequest, b'{"userId": "u-1", "placementId": "p-1", "countryCode": "US"}')
    request.country_code            # 'US'
    request.interests               # frozenset(), from userAttributes.interests
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self, TypeAlias, TypeVar, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared_layer.kernel.errors import PayloadTooLarge, ValidationFailed
from shared_layer.kernel.money import IMPRESSIONS_PER_CPM, MAX_MICROS, parse_micros, to_json_number

__all__ = [
    "API_MODEL_CONFIG",
    "DEVICE_TYPES",
    "MAX_BID_REQUEST_BYTES",
    "RULE_TYPES",
    "Ad",
    "AdContent",
    "AdSize",
    "BidRequest",
    "BidResponse",
    "Campaign",
    "CampaignStatus",
    "Clearing",
    "Daypart",
    "DeviceType",
    "DuplicateMode",
    "FrequencyCap",
    "KeyValues",
    "KeyValuesInput",
    "Pacing",
    "Pixels",
    "PlacementFloor",
    "RuleType",
    "Slot",
    "SlotsRequest",
    "SponsorshipGoal",
    "TargetingRule",
    "Tier",
    "UserAttributes",
    "is_slots_body",
    "parse",
]

RuleType: TypeAlias = Literal["country", "device_type", "interest", "age_range", "placement"]
RULE_TYPES: Final[tuple[RuleType, ...]] = get_args(RuleType)
DeviceType: TypeAlias = Literal["mobile", "desktop", "tablet", "ctv"]
DEVICE_TYPES: Final[tuple[DeviceType, ...]] = get_args(DeviceType)
CampaignStatus: TypeAlias = Literal["active", "paused", "ended"]
Pacing: TypeAlias = Literal["asap", "even", "frontloaded"]
Clearing: TypeAlias = Literal["first-price", "second-price"]
Tier: TypeAlias = Literal["sponsorship", "standard", "house"]
GoalPeriod: TypeAlias = Literal["day", "lifetime"]
Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: Final[tuple[Weekday, ...]] = get_args(Weekday)

MIN_TARGETED_AGE: Final = 13
MAX_TARGETED_AGE: Final = 120
MAX_REQUEST_AGE: Final = 150
MAX_LIST_ITEMS: Final = 50
MAX_RULES_PER_CAMPAIGN: Final = 1_000
MAX_ADS_PER_CAMPAIGN: Final = 50
MAX_FREQUENCY_IMPRESSIONS: Final = 1_000
MIN_FREQUENCY_WINDOW_S: Final = 60
MAX_FREQUENCY_WINDOW_S: Final = 30 * 24 * 3600
MAX_GOAL_IMPRESSIONS: Final = 10**12
MAX_KEY_VALUE_KEYS: Final = 20
MAX_AD_PIXELS: Final = 10_000
# The largest valid /bid body is about 7 KB (40 KB if every character is \u-escaped).
MAX_BID_REQUEST_BYTES: Final = 64 * 1024
# The smallest CPM whose impression still costs at least one micro (see money.impression_price).
MIN_CPM_MICROS: Final = IMPRESSIONS_PER_CPM

_NO_CONTROL_CHARS = r"^[^\x00-\x1F\x7F]+$"
_COUNTRY = re.compile(r"[A-Z]{2}")
_AGE_RANGE = re.compile(r"([0-9]{1,3})-([0-9]{1,3})")

Id = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROL_CHARS)
]
Label = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64, pattern=_NO_CONTROL_CHARS)
]
Title = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=255, pattern=_NO_CONTROL_CHARS)
]


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise ValueError(_COUNTRY_PROBLEM)
    return value


_COUNTRY_PROBLEM = "a country must be two upper-case letters (ISO 3166-1 alpha-2)"
CountryCode = Annotated[str, Strict(), AfterValidator(_country)]
StrictInt = Annotated[int, Strict()]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


HttpUrl = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=2048, pattern=_NO_CONTROL_CHARS),
    AfterValidator(_http_url),
]
MicrosAmount = Annotated[StrictInt, Field(ge=0, le=MAX_MICROS)]


# Every model that crosses the API edge: immutable, camelCase in JSON, unknown fields refused.
API_MODEL_CONFIG: Final = ConfigDict(
    frozen=True,
    extra="forbid",
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class _Model(BaseModel):
    model_config = API_MODEL_CONFIG

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy whose derived (cached) properties are recomputed from its own fields.

        Like pydantic's, `update` is not validated: prefer `parse` for anything from outside.
        """
        copied = super().model_copy(update=update, deep=deep)
        for name, member in vars(type(self)).items():
            if isinstance(member, cached_property):
                copied.__dict__.pop(name, None)
        return copied


class TargetingRule(_Model):
    """One rule of a campaign: the campaign wants requests whose `rule_type` matches `rule_value`.

    Values by type: country ``"US"`` (two upper-case letters, ISO 3166-1 alpha-2 form),
    device_type one of mobile/desktop/tablet/ctv, age_range ``"18-24"`` (inclusive, within
    13..120), interest and placement any label up to 64 characters (placement matches the
    request's placementId).
    """

    rule_type: RuleType
    rule_value: Label

    @field_validator("rule_value")
    @classmethod
    def _value_fits_type(cls, value: str, info: ValidationInfo) -> str:
        rule_type = info.data.get("rule_type")
        if rule_type == "country" and not _COUNTRY.fullmatch(value):
            raise ValueError(_COUNTRY_PROBLEM)
        if rule_type == "device_type" and value not in DEVICE_TYPES:
            raise ValueError(f"a device_type must be one of {', '.join(DEVICE_TYPES)}")
        if rule_type == "age_range":
            low, high = _parse_age_range(value)
            return f"{low}-{high}"
        return value


def _parse_age_range(value: str) -> tuple[int, int]:
    match = _AGE_RANGE.fullmatch(value)
    problem = f"an age_range is written like 18-24, within {MIN_TARGETED_AGE}..{MAX_TARGETED_AGE}"
    if not match:
        raise ValueError(problem)
    low, high = int(match[1]), int(match[2])
    if not MIN_TARGETED_AGE <= low <= high <= MAX_TARGETED_AGE:
        raise ValueError(problem)
    return low, high


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone name such as Europe/Paris or UTC") from exc
    return value


TimeZoneName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=64), AfterValidator(_time_zone)
]


class FrequencyCap(_Model):
    """At most `impressions` impressions of the campaign per user in any `window_seconds`.

    A sliding window, counted in the same atomic Redis step as the charge
    (bidding/store/budget_charge.lua): ``{"impressions": 3, "windowSeconds": 86400}`` is 3 per 24 h.
    """

    impressions: Annotated[StrictInt, Field(ge=1, le=MAX_FREQUENCY_IMPRESSIONS)]
    window_seconds: Annotated[
        StrictInt, Field(ge=MIN_FREQUENCY_WINDOW_S, le=MAX_FREQUENCY_WINDOW_S)
    ]


DuplicateMode: TypeAlias = Literal["none", "campaign", "advertiser", "creative"]


class PlacementFloor(_Model):
    """A placement's floor price (a CPM in micros) and how its auction clears.

    A bid below the effective floor (this one or the request's, whichever is higher) does not
    win. ``second-price``: the winner pays max(the next eligible bid, the floor) + 1 micro of
    CPM, never more than its own bid (`bidding.domain.auction.clearing_price`). ``duplicates``
    is the placement's duplicate level for several-slot requests that set none
    (`bidding.domain.auction.duplicate_level`).
    """

    placement_id: Label
    floor_cpm_micros: Annotated[StrictInt, Field(ge=0, le=MAX_MICROS)] = 0
    clearing: Clearing = "first-price"
    duplicates: DuplicateMode = "none"


Pixels = Annotated[StrictInt, Field(ge=1, le=MAX_AD_PIXELS)]


def require_whole_size(width: int | None, height: int | None) -> None:
    """An ad's size is both `width` and `height`, or neither (the API's input and the stored ad)."""
    if (width is None) != (height is None):
        raise ValueError("width and height: give both or neither")


class Ad(_Model):
    """A creative of a campaign; `redirect_url` is the only place a click may send a user.

    `width` x `height` (pixels, both or neither) is matched against a slot's sizes; an ad
    without a size fits only slots that name no size.
    """

    id: Id
    campaign_id: Id
    title: Title
    image_url: HttpUrl
    redirect_url: HttpUrl
    width: Pixels | None = None
    height: Pixels | None = None

    @model_validator(mode="after")
    def _whole_size(self) -> Ad:
        require_whole_size(self.width, self.height)
        return self

    @property
    def size(self) -> str | None:
        """``"300x250"``, or None without a size."""
        return None if self.width is None else f"{self.width}x{self.height}"


class SponsorshipGoal(_Model):
    """A sponsorship's goal: `impressions` per campaign day (paced evenly over it) or in its
    lifetime. ``{"impressions": 10000, "period": "day"}``."""

    impressions: Annotated[StrictInt, Field(ge=1, le=MAX_GOAL_IMPRESSIONS)]
    period: GoalPeriod = "day"


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return tuple(sorted(values, key=lambda v: (WEEKDAYS.index(v) if v in WEEKDAYS else 0, v)))


class Daypart(_Model):
    """When a campaign runs, in its time zone: the days of the week and the hours of the day.

    ``{"days": ["mon", "tue"], "hours": [9, 10, 11, 12, 13, 14, 15, 16]}`` is Monday and
    Tuesday from 09:00 to 17:00 (an hour ``h`` covers h:00 to h:59:59). Across a change of
    daylight-saving time the wall clock decides (`bidding.domain.targeting.in_daypart`).
    """

    days: Annotated[tuple[Weekday, ...], AfterValidator(_distinct)] = Field(
        min_length=1, max_length=7
    )
    hours: Annotated[
        tuple[Annotated[StrictInt, Field(ge=0, le=23)], ...], AfterValidator(_distinct)
    ] = Field(min_length=1, max_length=24)


KeyValues: TypeAlias = Mapping[str, tuple[str, ...]]
KeyValuesInput = Annotated[
    dict[Label, Annotated[tuple[Label, ...], Field(min_length=1, max_length=MAX_LIST_ITEMS)]],
    Field(max_length=MAX_KEY_VALUE_KEYS),
]


class Campaign(_Model):
    """An advertiser's campaign with its CPM bid, budgets (micros), targeting rules and ads.

    Targeting semantics (see `shared_layer.bidding.domain.targeting`): no rule of a type means
    unrestricted on that type; with rules of a type, at least one must match. `targeting` and
    `age_ranges` give the rules pre-grouped for the auction.

    `pacing` spreads the daily budget over the campaign's day in `time_zone` (bidding.domain.pacing;
    the daily budget's day is that day too); `frequency_cap` limits impressions per user.

    Invariants checked here: CPM at least 0.001 (so an impression costs at least one micro),
    budgets not negative, lifetime budget (when set) not below the daily one, every ad belongs to
    this campaign.
    """

    id: Id
    advertiser_id: Id
    name: Title
    status: CampaignStatus
    cpm_micros: Annotated[StrictInt, Field(ge=MIN_CPM_MICROS, le=MAX_MICROS)]
    daily_budget_micros: MicrosAmount
    lifetime_budget_micros: MicrosAmount | None = None
    targeting_rules: tuple[TargetingRule, ...] = Field(
        default=(), max_length=MAX_RULES_PER_CAMPAIGN
    )
    ads: tuple[Ad, ...] = Field(default=(), max_length=MAX_ADS_PER_CAMPAIGN)
    pacing: Pacing = "asap"
    time_zone: TimeZoneName = "UTC"
    frequency_cap: FrequencyCap | None = None
    tier: Tier = "standard"
    goal: SponsorshipGoal | None = None
    exclusion_labels: tuple[Label, ...] = Field(default=(), max_length=MAX_LIST_ITEMS)
    daypart: Daypart | None = None
    key_values: KeyValuesInput = Field(default_factory=dict)
    excluded_key_values: KeyValuesInput = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        lifetime = self.lifetime_budget_micros
        if lifetime is not None and lifetime < self.daily_budget_micros:
            raise ValueError("lifetimeBudgetMicros must not be below dailyBudgetMicros")
        if (self.tier == "sponsorship") != (self.goal is not None):
            raise ValueError("goal: a sponsorship needs a goal, and only a sponsorship has one")
        strangers = [ad.id for ad in self.ads if ad.campaign_id != self.id]
        if strangers:
            raise ValueError(f"ads {', '.join(strangers)} belong to another campaign")
        return self

    # Derived once per object on first use (instance attribute afterwards: ~40 ns to read),
    # for the auction's hot path; pydantic ignores cached properties in equality and dumps.
    @cached_property
    def targeting(self) -> Mapping[RuleType, frozenset[str]]:
        """Rule values by type, only for the types this campaign restricts."""
        grouped: dict[RuleType, set[str]] = {}
        for rule in self.targeting_rules:
            grouped.setdefault(rule.rule_type, set()).add(rule.rule_value)
        return MappingProxyType({kind: frozenset(values) for kind, values in grouped.items()})

    @cached_property
    def age_ranges(self) -> tuple[tuple[int, int], ...]:
        """The age_range rules as inclusive (low, high) pairs."""
        return tuple(sorted(_parse_age_range(v) for v in self.targeting.get("age_range", ())))

    @cached_property
    def impression_price_micros(self) -> int:
        """What one impression costs at this campaign's own CPM (a sponsorship always pays it;
        a house ad pays nothing)."""
        return 0 if self.tier == "house" else max(1, self.cpm_micros // IMPRESSIONS_PER_CPM)

    @cached_property
    def goal_micros(self) -> int | None:
        """A sponsorship's goal as money: its impressions at its own price (None otherwise)."""
        if self.goal is None:
            return None
        return min(MAX_MICROS, self.goal.impressions * self.impression_price_micros)

    @cached_property
    def pacing_budget_micros(self) -> int:
        """What the day's pacing curve spreads: the daily budget, or, for a daily sponsorship
        goal, the goal (when smaller): it is delivered evenly and stops once met."""
        if self.goal is not None and self.goal.period == "day" and self.goal_micros is not None:
            return min(self.daily_budget_micros, self.goal_micros)
        return self.daily_budget_micros

    @cached_property
    def effective_pacing(self) -> Pacing:
        """A daily sponsorship goal is paced evenly, whatever `pacing` says; a house ad is not
        paced."""
        if self.goal is not None and self.goal.period == "day":
            return "even"
        return "asap" if self.tier == "house" else self.pacing

    @cached_property
    def daily_cap_micros(self) -> int:
        """What the ledger lets the day's spend reach: the daily budget (a house ad, charged 0,
        has no budget)."""
        return MAX_MICROS if self.tier == "house" else self.daily_budget_micros

    @cached_property
    def lifetime_cap_micros(self) -> int | None:
        """The lifetime budget, or a lifetime sponsorship goal's money when smaller (None: no
        limit; a house ad has none)."""
        if self.tier == "house":
            return None
        caps = [self.lifetime_budget_micros]
        if self.goal is not None and self.goal.period == "lifetime":
            caps.append(self.goal_micros)
        present = [cap for cap in caps if cap is not None]
        return min(present) if present else None

    @cached_property
    def sizes(self) -> frozenset[str]:
        """The sizes of its ads (``"300x250"``)."""
        return frozenset(ad.size for ad in self.ads if ad.size is not None)


class UserAttributes(_Model):
    age: Annotated[StrictInt, Field(ge=0, le=MAX_REQUEST_AGE)] | None = None
    interests: tuple[Label, ...] = Field(default=(), max_length=MAX_LIST_ITEMS)
    purchase_history: tuple[Label, ...] = Field(default=(), max_length=MAX_LIST_ITEMS)


class BidRequest(_Model):
    """The specification's /bid body. userId and placementId are required; the rest narrows
    targeting.

    A request without a country (device, age) matches only campaigns unrestricted on it.
    Interests match exactly (case-sensitive); purchaseHistory is carried for later use.
    `floor_micros` is a floor CPM set by the caller in code (the OpenRTB endpoint sets it from
    ``imp.bidfloor``), not part of the /bid JSON: the effective floor is the higher of it and
    the placement's (bidding.domain.auction).
    """

    user_id: Id
    placement_id: Id
    country_code: CountryCode | None = None
    device_type: DeviceType | None = None
    user_attributes: UserAttributes = Field(default_factory=UserAttributes)
    key_values: KeyValuesInput = Field(default_factory=dict)
    floor_micros: Annotated[StrictInt, Field(ge=0, le=MAX_MICROS)] = Field(default=0, exclude=True)

    @field_validator("floor_micros", mode="before")
    @classmethod
    def _floor_not_from_json(cls, value: Any, info: ValidationInfo) -> Any:
        if info.mode == "json":
            raise ValueError("is not part of the /bid body (placement floors are set by the API)")
        return value

    @cached_property
    def interests(self) -> frozenset[str]:
        return frozenset(self.user_attributes.interests)

    @property
    def age(self) -> int | None:
        return self.user_attributes.age


MAX_SLOTS: Final = 15
MAX_SLOT_COUNT: Final = 5
_SIZE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")


def _size(value: str) -> str:
    match = _SIZE.fullmatch(value)
    if not match or max(int(match[1]), int(match[2])) > MAX_AD_PIXELS:
        raise ValueError(f"a size is written WIDTHxHEIGHT, such as 300x250 (1..{MAX_AD_PIXELS})")
    return value


AdSize = Annotated[str, Strict(), AfterValidator(_size)]


class Slot(_Model):
    """One slot of a page (Kevel's ``divName``): its name, placement, accepted sizes and how
    many ads (1 to 5) it shows. No sizes: any ad, sized or not; with sizes: an ad of one of
    them."""

    name: Label
    placement_id: Id
    sizes: tuple[AdSize, ...] = Field(default=(), max_length=20)
    count: Annotated[StrictInt, Field(ge=1, le=MAX_SLOT_COUNT)] = 1


class SlotsRequest(_Model):
    """A request for several slots at once: the /bid request's user fields, ``slots`` in
    place of ``placementId``, and the level at which one request's winners must differ:
    ``none``, ``campaign``, ``advertiser`` or ``creative`` (an ad); without it, the strictest
    level set on the slots' placements (`PlacementFloor.duplicates`). Slot names are unique.

    Campaigns sharing an exclusion label never fill two slots of one request, whatever the
    level.
    """

    user_id: Id
    slots: tuple[Slot, ...] = Field(min_length=1, max_length=MAX_SLOTS)
    duplicates: DuplicateMode | None = None
    country_code: CountryCode | None = None
    device_type: DeviceType | None = None
    user_attributes: UserAttributes = Field(default_factory=UserAttributes)
    key_values: KeyValuesInput = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> SlotsRequest:
        names = [slot.name for slot in self.slots]
        if len(set(names)) != len(names):
            raise ValueError("slots: each slot needs its own name")
        return self

    def for_slot(self, slot: Slot) -> BidRequest:
        """The one-slot /bid request of `slot` (what targeting and the impression see); built
        without validating again, from fields this request already validated."""
        return BidRequest.model_construct(
            user_id=self.user_id,
            placement_id=slot.placement_id,
            country_code=self.country_code,
            device_type=self.device_type,
            user_attributes=self.user_attributes,
            key_values=self.key_values,
            floor_micros=0,
        )


def is_slots_body(body: bytes | bytearray | str) -> bool:
    """Whether a /bid (or POST /serve) JSON body asks for several slots (has ``slots``) rather
    than the one-slot request; a body that is not a JSON object is left to `parse` to refuse.
    """
    marker = '"slots"' if isinstance(body, str) else b'"slots"'
    if marker not in body:  # type: ignore[operator]
        return False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "slots" in data


class AdContent(_Model):
    title: Title
    image_url: HttpUrl
    redirect_url: HttpUrl


class BidResponse(_Model):
    """The specification's /bid answer, plus ``priceMicros``: what this impression was charged.

    The specification's ``bidPrice`` is the winner's CPM bid; inside it is `bid_cpm_micros`, and
    only
    `to_json` writes it as a decimal JSON number (``2.5`` for 2_500_000 micros, the same JSON
    number as the specification's ``2.50``). `from_json` reads such a body back exactly (serve does;
    a bad body from bid is bid's fault, so serve maps its ValidationFailed to an upstream error).
    ``confidence`` is 1.0: we bid only when every targeting rule type matched.

    >>> response = BidResponse(campaign_id="c-1", ad_id="a-1", bid_cpm_micros=2_500_000,
    ...     price_micros=2_500, ad_content=AdContent(title="T", image_url="https://x.test/i.png",
    ...     redirect_url="https://x.test/"))
    >>> response.to_json()["bidPrice"], BidResponse.from_json(json.dumps(response.to_json()))
    ... == response
    (2.5, True)
    """

    campaign_id: Id
    ad_id: Id
    bid_cpm_micros: Annotated[StrictInt, Field(ge=MIN_CPM_MICROS, le=MAX_MICROS)]
    price_micros: MicrosAmount
    ad_content: AdContent
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0

    def to_json(self) -> dict[str, Any]:
        """The response body as JSON-ready data in the specification's shape."""
        body = self.model_dump(mode="json", exclude={"bid_cpm_micros"})
        return {"bidPrice": to_json_number(self.bid_cpm_micros), **body}

    @classmethod
    def from_json(cls, body: bytes | bytearray | str) -> BidResponse:
        """Parse a /bid response body, converting ``bidPrice`` to micros without floats."""
        try:
            data = json.loads(body, parse_float=Decimal)
        except ValueError as exc:
            raise ValidationFailed("bid response is not valid JSON", ["body"]) from exc
        if not isinstance(data, dict):
            raise ValidationFailed("bid response must be a JSON object", ["body"])
        if "bidPrice" not in data:
            raise ValidationFailed("invalid BidResponse: bidPrice: Field required", ["bidPrice"])
        fields = {key: value for key, value in data.items() if key != "bidPrice"}
        fields["bidCpmMicros"] = parse_micros(data["bidPrice"], field="bidPrice", allow_zero=False)
        return parse(cls, fields)


M = TypeVar("M", bound=BaseModel)


def parse(
    model: type[M],
    raw: bytes | bytearray | str | Mapping[str, Any],
    *,
    max_bytes: int | None = None,
) -> M:
    """Validate `raw` (a JSON body or already-decoded data) into `model`, or raise our errors.

    Raises `PayloadTooLarge` above `max_bytes` (default `MAX_BID_REQUEST_BYTES` for BidRequest)
    and `ValidationFailed` whose message names every bad field by its JSON name.

    >>> parse(BidRequest, {"userId": "u-1"})
    Traceback (most recent call last):
    ...
    shared_layer.kernel.errors.ValidationFailed: invalid BidRequest: placementId: Field required
    """
    limit = max_bytes if max_bytes is not None else _DEFAULT_LIMITS.get(model)
    try:
        if isinstance(raw, (bytes, bytearray, str)):
            if limit is not None and len(raw) > limit:
                raise PayloadTooLarge(f"body is larger than {limit} bytes")
            return model.model_validate_json(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _validation_failed(model, exc) from exc


_DEFAULT_LIMITS: dict[type[BaseModel], int] = {
    BidRequest: MAX_BID_REQUEST_BYTES,
    SlotsRequest: MAX_BID_REQUEST_BYTES,
}
_MAX_LISTED_PROBLEMS = 10


def _validation_failed(model: type[BaseModel], exc: ValidationError) -> ValidationFailed:
    problems: list[str] = []
    fields: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        if error["type"] == "json_invalid":
            detail = error["msg"].removeprefix("Invalid JSON: ")
            return ValidationFailed(f"body is not valid JSON: {detail}", ["body"])
        where = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "string_pattern_mismatch":
            message = "contains characters that are not allowed"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif message.startswith("Input should be a valid dictionary"):
            message = "Input should be an object"
        elif message.startswith("Tuple should"):
            message = "List should" + message.removeprefix("Tuple should")
        fields.append(where)
        problems.append(f"{where}: {message}")
    listed = "; ".join(problems[:_MAX_LISTED_PROBLEMS])
    if len(problems) > _MAX_LISTED_PROBLEMS:
        listed += f"; and {len(problems) - _MAX_LISTED_PROBLEMS} more"
    return ValidationFailed(f"invalid {model.__name__}: {listed}", fields)
