"""Campaigns in the admin API: what a client sends and what the API answers, validated exactly.

`CampaignRequest` (camelCase, money as decimal numbers ``cpmBid``/``dailyBudget``/
``lifetimeBudget``), `BulkRequest`, `parse_campaign`, `parse_bulk`, `parse_list_query` and
`campaign_json`. Money becomes integer micros with the specification's column precision (a CPM with
4 decimals, budgets with 2): more decimals are a 400, not a silent rounding by PostgreSQL.
`check_storable` guards every other caller of the store with the same limits.

The repository that stores them is `shared_layer.campaigns.store.campaigns.CampaignStore`; the
decisions behind ids, soft deletes and removed ads are described there.

Example::

    request = parse_campaign(body)           # 400 with every problem listed, or a request
    campaign = request.to_campaign()         # models.Campaign, money in micros
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    model_validator,
)

from shared_layer.kernel.errors import PayloadTooLarge, ValidationFailed
from shared_layer.kernel.models import (
    API_MODEL_CONFIG,
    MAX_ADS_PER_CAMPAIGN,
    MAX_LIST_ITEMS,
    MAX_RULES_PER_CAMPAIGN,
    MIN_CPM_MICROS,
    Ad,
    Campaign,
    CampaignStatus,
    Clearing,
    Daypart,
    DuplicateMode,
    FrequencyCap,
    HttpUrl,
    KeyValuesInput,
    Label,
    Pacing,
    Pixels,
    PlacementFloor,
    SponsorshipGoal,
    TargetingRule,
    Tier,
    TimeZoneName,
    Title,
    parse,
    require_whole_size,
)
from shared_layer.kernel.money import MAX_MICROS, Micros, parse_micros, to_decimal, to_json_number

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_BULK_CAMPAIGNS",
    "MAX_PAGE_SIZE",
    "BulkRequest",
    "CampaignRecord",
    "CampaignRequest",
    "FloorRequest",
    "LiveSpend",
    "campaign_json",
    "check_storable",
    "decode_cursor",
    "decode_offset_cursor",
    "encode_cursor",
    "encode_offset_cursor",
    "floor_json",
    "is_uuid",
    "parse_bulk",
    "parse_campaign",
    "parse_floor",
    "parse_list_query",
]

MAX_BULK_CAMPAIGNS: Final = 1_000
MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 50
# The specification's columns: cpm_bid DECIMAL(10, 4), budgets DECIMAL(12, 2).
_CPM_STEP: Final = 100  # micros per 0.0001
_BUDGET_STEP: Final = 10_000  # micros per 0.01
_MAX_CPM: Final = 999_999_9999 * _CPM_STEP
_MAX_BUDGET: Final = MAX_MICROS  # below DECIMAL(12, 2)'s limit; see money.MAX_MICROS


def _money(*, step: int, places: int, minimum: int, maximum: int) -> BeforeValidator:
    """A JSON decimal number -> exact micros, with the column's precision and range."""

    def convert(value: Any) -> Micros:
        if isinstance(value, (str, bool)) or not isinstance(value, (int, float, Decimal)):
            raise ValueError("must be a number")
        try:
            micros = parse_micros(value)
        except ValidationFailed as exc:
            raise ValueError(exc.message.removeprefix("amount: ")) from None
        if micros % step:
            raise ValueError(f"must have at most {places} decimal places")
        if micros < minimum:
            floor = f"{to_decimal(minimum).normalize():f}"
            raise ValueError(f"must be greater than 0 (at least {floor})")
        if micros > maximum:
            raise ValueError(f"must be at most {to_decimal(maximum).normalize():f}")
        return micros

    return BeforeValidator(convert)


CpmBid = Annotated[int, _money(step=_CPM_STEP, places=4, minimum=MIN_CPM_MICROS, maximum=_MAX_CPM)]
FloorCpm = Annotated[int, _money(step=_CPM_STEP, places=4, minimum=0, maximum=_MAX_CPM)]
Budget = Annotated[int, _money(step=_BUDGET_STEP, places=2, minimum=0, maximum=_MAX_BUDGET)]


def _uuid_text(value: str) -> str:
    if not is_uuid(value):
        raise ValueError("must be a UUID such as 3f2b8d9c-1f1c-4a0e-8e4b-9a573f1f2b8d")
    return value.lower()


Uuid = Annotated[str, StringConstraints(max_length=36), AfterValidator(_uuid_text)]


class _Request(BaseModel):
    """The API's input: camelCase in JSON, unknown fields refused (as the domain models)."""

    model_config = API_MODEL_CONFIG


class AdRequest(_Request):
    """An ad as the API takes it; `id` optional (generated), `campaignId` implied by the URL."""

    id: Uuid | None = None
    title: Title
    image_url: HttpUrl
    redirect_url: HttpUrl
    width: Pixels | None = None
    height: Pixels | None = None

    @model_validator(mode="after")
    def _whole_size(self) -> AdRequest:
        require_whole_size(self.width, self.height)
        return self


class CampaignRequest(_Request):
    """A campaign as the API takes it (POST /, PUT /{id}, each item of POST /bulk).

    ``status`` may be active or paused (ended is reached only by DELETE); on PUT it may be left
    out to keep the current one. ``pacing`` (asap, even, frontloaded), ``timeZone`` (IANA, the
    campaign's day for its daily budget and pacing) and ``frequencyCap`` default to asap, UTC
    and none, also on PUT (a replace).
    """

    id: Uuid | None = None
    advertiser_id: Uuid
    name: Title
    status: Literal["active", "paused"] | None = None
    cpm_bid: CpmBid
    daily_budget: Budget
    lifetime_budget: Budget | None = None
    targeting_rules: tuple[TargetingRule, ...] = Field(
        default=(), max_length=MAX_RULES_PER_CAMPAIGN
    )
    ads: tuple[AdRequest, ...] = Field(default=(), max_length=MAX_ADS_PER_CAMPAIGN)
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
    def _consistent(self) -> CampaignRequest:
        if self.lifetime_budget is not None and self.lifetime_budget < self.daily_budget:
            raise ValueError("lifetimeBudget: must not be below dailyBudget")
        if self.tier == "sponsorship" and self.goal is None:
            raise ValueError("goal: a sponsorship campaign needs a goal")
        if self.tier != "sponsorship" and self.goal is not None:
            raise ValueError("goal: only a sponsorship campaign has a goal")
        ad_ids = [ad.id.lower() for ad in self.ads if ad.id]
        if len(ad_ids) != len(set(ad_ids)):
            raise ValueError("ads: the same ad id appears twice")
        return self

    def to_campaign(
        self, campaign_id: str | None = None, status: CampaignStatus = "active"
    ) -> Campaign:
        """The domain Campaign: ids generated where missing, rules deduplicated and sorted."""
        cid = (campaign_id or self.id or str(uuid.uuid4())).lower()
        rules = sorted({(r.rule_type, r.rule_value) for r in self.targeting_rules})
        ads = sorted(
            (
                Ad(
                    id=(ad.id or str(uuid.uuid4())).lower(),
                    campaign_id=cid,
                    title=ad.title,
                    image_url=ad.image_url,
                    redirect_url=ad.redirect_url,
                    width=ad.width,
                    height=ad.height,
                )
                for ad in self.ads
            ),
            key=lambda ad: ad.id,
        )
        return Campaign(
            id=cid,
            advertiser_id=self.advertiser_id.lower(),
            name=self.name,
            status=self.status or status,
            cpm_micros=self.cpm_bid,
            daily_budget_micros=self.daily_budget,
            lifetime_budget_micros=self.lifetime_budget,
            targeting_rules=tuple(TargetingRule(rule_type=t, rule_value=v) for t, v in rules),
            ads=tuple(ads),
            pacing=self.pacing,
            time_zone=self.time_zone,
            frequency_cap=self.frequency_cap,
            tier=self.tier,
            goal=self.goal,
            exclusion_labels=tuple(sorted(set(self.exclusion_labels))),
            daypart=self.daypart,
            key_values=_sorted_key_values(self.key_values),
            excluded_key_values=_sorted_key_values(self.excluded_key_values),
        )


def _sorted_key_values(key_values: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(sorted(set(values))) for key, values in sorted(key_values.items())}


class FloorRequest(_Request):
    """PUT /floors/{placementId}: ``{"floorCpm": 1.50, "clearing": "second-price"}``.

    ``floorCpm`` is a CPM like ``cpmBid`` (at most 4 decimals, 0 allowed); ``clearing``
    defaults to first-price; ``duplicates`` (none by default) is the placement's duplicate level
    for several-slot requests that set none.
    """

    floor_cpm: FloorCpm
    clearing: Clearing = "first-price"
    duplicates: DuplicateMode = "none"

    def to_floor(self, placement_id: str) -> PlacementFloor:
        return PlacementFloor(
            placement_id=placement_id,
            floor_cpm_micros=self.floor_cpm,
            clearing=self.clearing,
            duplicates=self.duplicates,
        )


class _PlacementPath(_Request):
    placement_id: Label


def parse_floor(placement_id: str, body: bytes | str) -> PlacementFloor:
    """Validate a placement id from the path and a floor from the body; 400 otherwise.

    >>> parse_floor("placement-001", b'{"floorCpm": 1.5}').floor_cpm_micros
    1500000
    """
    parse(_PlacementPath, {"placementId": placement_id})
    data = _load_json(body, 64 * 1024)
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", ["body"])
    return parse(FloorRequest, data).to_floor(placement_id)


def floor_json(floor: PlacementFloor, updated_at: datetime) -> dict[str, Any]:
    """The API's view of a placement floor (money as a decimal number)."""
    return {
        "placementId": floor.placement_id,
        "floorCpm": to_json_number(floor.floor_cpm_micros),
        "clearing": floor.clearing,
        "duplicates": floor.duplicates,
        "updatedAt": _iso(updated_at),
    }


class BulkRequest(_Request):
    """POST /bulk: ``{"campaigns": [...]}``, 1 to 1,000 campaigns, all created or none."""

    campaigns: tuple[CampaignRequest, ...] = Field(min_length=1, max_length=MAX_BULK_CAMPAIGNS)


def _load_json(body: bytes | str, max_bytes: int) -> Any:
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValidationFailed(f"request body is not valid JSON: {exc}", ["body"]) from exc


def parse_campaign(body: bytes | str, *, max_bytes: int = 256 * 1024) -> CampaignRequest:
    """Validate one campaign from a JSON body (decimal money read exactly); 400/413 otherwise.

    >>> parse_campaign(b'{"advertiserId": "00000000-0000-4000-8000-000000000001", "name": "N",'
    ...     b' "cpmBid": 2.50, "dailyBudget": 100}').cpm_bid
    2500000
    """
    data = _load_json(body, max_bytes)
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", ["body"])
    return parse(CampaignRequest, data)


def parse_bulk(body: bytes | str, *, max_bytes: int = 16 * 1024 * 1024) -> BulkRequest:
    """Validate a bulk import; every bad field is named with its index (campaigns.3.cpmBid)."""
    data = _load_json(body, max_bytes)
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", ["body"])
    campaigns = data.get("campaigns")
    if isinstance(campaigns, list) and len(campaigns) > MAX_BULK_CAMPAIGNS:
        raise ValidationFailed(
            f"campaigns: at most {MAX_BULK_CAMPAIGNS} per import, got {len(campaigns)}",
            ["campaigns"],
        )
    bulk = parse(BulkRequest, data)
    ids = [c.id.lower() for c in bulk.campaigns if c.id]
    duplicated = sorted({i for i in ids if ids.count(i) > 1}) if len(ids) != len(set(ids)) else []
    if duplicated:
        raise ValidationFailed(f"campaigns: duplicate ids {', '.join(duplicated)}", ["campaigns"])
    return bulk


def parse_list_query(query: Mapping[str, str]) -> dict[str, Any]:
    """GET /?status=&advertiserId=&q=&sort=&order=&startDate=&endDate=&limit=&cursor= as keyword
    arguments for `CampaignStore.list`.

    A parameter that is present must be valid (an empty ``status=`` is a 400, not "any").
    ``q``: name contains, any case. ``sort``: name, createdAt or spend (the spend of the UTC
    days startDate..endDate, today when absent), ``order`` asc (default) or desc; a sorted list
    pages by offset, an unsorted one by id.
    """
    status = query.get("status")
    if status is not None and status not in ("active", "paused", "ended"):
        raise ValidationFailed("status: must be active, paused or ended", ["status"])
    limit = query.get("limit", str(DEFAULT_PAGE_SIZE))
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit: must be a whole number 1..{MAX_PAGE_SIZE}", ["limit"])
    advertiser = query.get("advertiserId")
    if advertiser is not None and not is_uuid(advertiser):
        raise ValidationFailed("advertiserId: must be a UUID", ["advertiserId"])
    text = query.get("q")
    if text is not None and (len(text) > _MAX_SEARCH_CHARS or "\x00" in text):
        raise ValidationFailed(f"q: at most {_MAX_SEARCH_CHARS} characters, no NUL", ["q"])
    sort = query.get("sort")
    if sort is not None and sort not in LIST_SORTS:
        raise ValidationFailed(f"sort: must be {', '.join(LIST_SORTS)}", ["sort"])
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ValidationFailed("order: must be asc or desc", ["order"])
    days = [_list_day(query, name) for name in ("startDate", "endDate")]
    if days[0] and days[1] and days[0] > days[1]:
        raise ValidationFailed("startDate: must not be after endDate", ["startDate"])
    cursor = query.get("cursor")
    if cursor is not None:
        (decode_offset_cursor if sort else decode_cursor)(cursor)
    return {
        "status": status,
        "advertiser_id": advertiser,
        "limit": int(limit),
        "cursor": cursor,
        "text": text or None,
        "sort": sort,
        "descending": order == "desc",
        "spend_days": (days[0], days[1]),
    }


LIST_SORTS: Final = ("name", "createdAt", "spend")
_MAX_SEARCH_CHARS: Final = 200


def _list_day(query: Mapping[str, str], name: str) -> date | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) != 10 or not raw.isascii():
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: must be a date YYYY-MM-DD", [name]) from exc


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A stored campaign with its timestamps (UTC)."""

    campaign: Campaign
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LiveSpend:
    """A campaign's spend today (its own day) and what its pacing curve allows by now."""

    spent_today_micros: Micros
    expected_spend_now_micros: Micros


class SpendReader(Protocol):
    """Reads the budget ledger's spend (`bidding.store.budget_ledger.RedisBudgetLedger` does)."""

    def spent_many(self, days: Sequence[tuple[str, date]]) -> list[tuple[Micros, Micros]]:
        """(spent on the day, lifetime spend) for each (campaign id, day)."""
        ...


def campaign_json(record: CampaignRecord, live: LiveSpend | None = None) -> dict[str, Any]:
    """The API's view of a campaign (camelCase, money as decimal numbers).

    `live` (from the budget ledger) fills ``spentToday`` and ``expectedSpendNow``; without it
    (Redis unreachable) both are null.
    """
    c = record.campaign
    cap = c.frequency_cap
    return {
        "id": c.id,
        "advertiserId": c.advertiser_id,
        "name": c.name,
        "status": c.status,
        "cpmBid": to_json_number(c.cpm_micros),
        "dailyBudget": to_json_number(c.daily_budget_micros),
        "lifetimeBudget": (
            None if c.lifetime_budget_micros is None else to_json_number(c.lifetime_budget_micros)
        ),
        "targetingRules": [r.model_dump(mode="json") for r in c.targeting_rules],
        "ads": [ad.model_dump(mode="json") for ad in c.ads],
        "pacing": c.pacing,
        "timeZone": c.time_zone,
        "frequencyCap": None if cap is None else cap.model_dump(mode="json"),
        "tier": c.tier,
        "goal": None if c.goal is None else c.goal.model_dump(mode="json"),
        "exclusionLabels": list(c.exclusion_labels),
        "daypart": None if c.daypart is None else c.daypart.model_dump(mode="json"),
        "keyValues": {key: list(values) for key, values in c.key_values.items()},
        "excludedKeyValues": {key: list(values) for key, values in c.excluded_key_values.items()},
        "spentToday": None if live is None else to_json_number(live.spent_today_micros),
        "expectedSpendNow": (
            None if live is None else to_json_number(live.expected_spend_now_micros)
        ),
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
    }


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def check_storable(campaign: Campaign) -> None:
    """What the columns can hold exactly; the API validates first, this guards other callers."""
    problems = []
    if not is_uuid(campaign.id):
        problems.append("id: must be a UUID")
    if not is_uuid(campaign.advertiser_id):
        problems.append("advertiserId: must be a UUID")
    if campaign.cpm_micros % _CPM_STEP or campaign.cpm_micros > _MAX_CPM:
        problems.append("cpmBid: at most 4 decimal places and 999999.9999")
    for name, amount in (
        ("dailyBudget", campaign.daily_budget_micros),
        ("lifetimeBudget", campaign.lifetime_budget_micros),
    ):
        if amount is not None and (amount % _BUDGET_STEP or amount > _MAX_BUDGET):
            problems.append(f"{name}: at most 2 decimal places and 1000000000")
    problems += [f"ads: {ad.id} is not a UUID" for ad in campaign.ads if not is_uuid(ad.id)]
    if problems:
        raise ValidationFailed(f"campaign {campaign.id}: {'; '.join(problems)}")


def is_uuid(value: str) -> bool:
    """True for a UUID in its 36-character text form (any case). ASCII only: Python's UUID
    parser also reads other scripts' digits, which PostgreSQL's uuid type refuses."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36 and value.isascii()


def encode_cursor(last_id: str) -> str:
    """The opaque keyset cursor of a page that ended at `last_id`."""
    return _encode_cursor("after", last_id)


def decode_cursor(cursor: str) -> str:
    """The id a cursor from `encode_cursor` points after; a 400 for anything else."""
    after = _cursor_field(cursor, "after")
    if not isinstance(after, str) or not is_uuid(after):
        raise ValidationFailed("cursor: not a cursor this API returned", ["cursor"])
    return after


def encode_offset_cursor(offset: int) -> str:
    """The opaque cursor of a sorted list's page that ends before row `offset`."""
    return _encode_cursor("offset", offset)


def decode_offset_cursor(cursor: str) -> int:
    """The row a cursor from `encode_offset_cursor` points at; a 400 for anything else."""
    offset = _cursor_field(cursor, "offset")
    if type(offset) is not int or not 0 < offset <= 10_000_000:
        raise ValidationFailed("cursor: not a cursor this API returned", ["cursor"])
    return offset


def _encode_cursor(field: str, value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({field: value}).encode()).decode().rstrip("=")


def _cursor_field(cursor: str, field: str) -> object:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))[field]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as exc:
        raise ValidationFailed("cursor: not a cursor this API returned", ["cursor"]) from exc
