"""Campaigns in PostgreSQL (the record), and their shape in the admin API.

Two parts, one noun:

- `CampaignStore`, the repository: create, get, get_many, list (filtered, keyset-paginated),
  replace, set_status, delete, bulk_import (one transaction, all or nothing), load_active. It
  takes and returns `models.Campaign` (money in integer micros) and converts to the seed's
  DECIMAL columns exactly (`money.to_decimal` / `money.parse_micros`, never a float).
- The admin API's JSON: `CampaignRequest` (what a client sends: camelCase, money as decimal
  numbers ``cpmBid``/``dailyBudget``/``lifetimeBudget``), `BulkRequest`, `parse_campaign`,
  `parse_bulk` and `campaign_json` (what the API answers).

Decisions (docs in functions/campaigns/README.md):

- Ids are UUIDs, as in the seed's schema: generated here unless the client sends one (bulk
  imports and demo data send theirs, so that a re-run conflicts instead of duplicating).
- DELETE is a soft delete: the campaign becomes ``ended`` (the seed's third status) and stays
  readable, because events_log and daily_metrics reference it and its analytics must survive.
  An ended campaign cannot be resumed, paused or replaced (409); deleting it again is harmless.
- Ads left out of a replacement are marked removed (``ads.removed_at``), never deleted: events
  reference them. Send an ad's ``id`` to keep it.
- Precision: the seed's columns hold a CPM with 4 decimals and budgets with 2; more decimals are
  a 400, not a silent rounding by PostgreSQL.

Example::

    store = CampaignStore(Database.from_url(url, password=secret))
    record = store.create(parse_campaign(body).to_campaign())
    page = store.list(status="active", limit=50)          # page.items, page.next_cursor
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    model_validator,
)

from .db import Database
from .errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from .models import (
    API_MODEL_CONFIG,
    MAX_ADS_PER_CAMPAIGN,
    MAX_RULES_PER_CAMPAIGN,
    MIN_CPM_MICROS,
    Ad,
    Campaign,
    CampaignStatus,
    HttpUrl,
    TargetingRule,
    Title,
    parse,
)
from .money import MAX_MICROS, Micros, parse_micros, to_decimal, to_json_number

__all__ = [
    "MAX_BULK_CAMPAIGNS",
    "MAX_PAGE_SIZE",
    "BulkRequest",
    "CampaignRecord",
    "CampaignRequest",
    "CampaignStore",
    "Page",
    "campaign_json",
    "is_uuid",
    "parse_bulk",
    "parse_campaign",
    "parse_list_query",
]

MAX_BULK_CAMPAIGNS: Final = 1_000
MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 50
# The seed's columns: cpm_bid DECIMAL(10, 4), budgets DECIMAL(12, 2).
_CPM_STEP: Final = 100  # micros per 0.0001
_BUDGET_STEP: Final = 10_000  # micros per 0.01
_MAX_CPM: Final = 999_999_9999 * _CPM_STEP
_MAX_BUDGET: Final = MAX_MICROS  # below DECIMAL(12, 2)'s limit; see money.MAX_MICROS


# --- the admin API's shape ---


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


class CampaignRequest(_Request):
    """A campaign as the API takes it (POST /, PUT /{id}, each item of POST /bulk).

    ``status`` may be active or paused (ended is reached only by DELETE); on PUT it may be left
    out to keep the current one.
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

    @model_validator(mode="after")
    def _consistent(self) -> CampaignRequest:
        if self.lifetime_budget is not None and self.lifetime_budget < self.daily_budget:
            raise ValueError("lifetimeBudget: must not be below dailyBudget")
        ad_ids = [ad.id.lower() for ad in self.ads if ad.id]
        if len(ad_ids) != len(set(ad_ids)):
            raise ValueError("ads: the same ad id appears twice")
        return self

    def to_campaign(self, campaign_id: str | None = None, status: CampaignStatus = "active"):
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
        )


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
    """GET /?status=&advertiserId=&limit=&cursor= as keyword arguments for `CampaignStore.list`.

    A parameter that is present must be valid (an empty ``status=`` is a 400, not "any").
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
    cursor = query.get("cursor")
    if cursor is not None:
        _decode_cursor(cursor)
    return {"status": status, "advertiser_id": advertiser, "limit": int(limit), "cursor": cursor}


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A stored campaign with its timestamps (UTC)."""

    campaign: Campaign
    created_at: datetime
    updated_at: datetime


def campaign_json(record: CampaignRecord) -> dict[str, Any]:
    """The API's view of a campaign (camelCase, money as decimal numbers)."""
    c = record.campaign
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
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
    }


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# --- the repository ---


@dataclass(frozen=True, slots=True)
class Page:
    items: list[CampaignRecord]
    next_cursor: str | None


_COLUMNS: Final = (
    "id::text, advertiser_id::text, name, status, cpm_bid, daily_budget, lifetime_budget, "
    "created_at, updated_at"
)


class CampaignStore:
    """Campaigns with their targeting rules and ads in PostgreSQL; thread-safe (pooled)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, campaign: Campaign) -> CampaignRecord:
        """Insert a new campaign; Conflict (409) if its id (or an ad id) exists."""
        self.bulk_import([campaign])
        record = self.get(campaign.id)
        assert record is not None
        return record

    def bulk_import(self, campaigns: Sequence[Campaign]) -> int:
        """Insert up to 1,000 campaigns in ONE transaction: all of them, or none (409/400)."""
        if len(campaigns) > MAX_BULK_CAMPAIGNS:
            raise ValidationFailed(f"at most {MAX_BULK_CAMPAIGNS} campaigns per import")
        for campaign in campaigns:
            _check_storable(campaign)
        with self._db.transaction() as conn:
            _insert(conn, campaigns)
        return len(campaigns)

    def get(self, campaign_id: str) -> CampaignRecord | None:
        records = self._records([campaign_id])
        return records[0] if records else None

    def require(self, campaign_id: str) -> CampaignRecord:
        """Like `get`, but an unknown id is NotFound (404)."""
        record = self.get(campaign_id)
        if record is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return record

    def get_many(self, campaign_ids: Sequence[str]) -> list[Campaign]:
        """The campaigns that exist among these ids (any status), in no particular order."""
        return [r.campaign for r in self._records(campaign_ids)]

    def load_active(self) -> list[Campaign]:
        """Every active campaign with its rules and ads (one consistent read)."""
        with self._db.transaction(read_only=True) as conn:
            rows = conn.run(
                f"SELECT {_COLUMNS} FROM campaigns WHERE status = 'active' ORDER BY id"  # noqa: S608
            )
            return [r.campaign for r in _assemble(conn, rows)]

    def list(
        self,
        *,
        status: CampaignStatus | None = None,
        advertiser_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page:
        """One page, ordered by id; `cursor` is the previous page's `next_cursor` (opaque)."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"limit: must be between 1 and {MAX_PAGE_SIZE}", ["limit"])
        conditions, params = [], {"limit": limit + 1}
        if status is not None:
            conditions.append("status = :status")
            params["status"] = status
        if advertiser_id is not None:
            if not is_uuid(advertiser_id):
                return Page([], None)
            conditions.append("advertiser_id = CAST(:advertiser AS uuid)")
            params["advertiser"] = advertiser_id
        if cursor is not None:
            conditions.append("id > CAST(:after AS uuid)")
            params["after"] = _decode_cursor(cursor)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        # Only fixed fragments are joined into the statement; every value is a parameter.
        sql = f"SELECT {_COLUMNS} FROM campaigns {where} ORDER BY id LIMIT :limit"  # noqa: S608
        with self._db.transaction(read_only=True) as conn:
            rows = conn.run(sql, **params)
            records = _assemble(conn, rows[:limit])
        next_cursor = _encode_cursor(records[-1].campaign.id) if len(rows) > limit else None
        return Page(records, next_cursor)

    def replace(self, campaign: Campaign, *, keep_status: bool) -> CampaignRecord:
        """Replace a campaign's fields, rules and ads (ads left out are marked removed).

        `keep_status`: the request did not say a status; the stored one stays. NotFound if the
        campaign does not exist, Conflict if it ended.
        """
        _check_storable(campaign)
        with self._db.transaction() as conn:
            current = _lock(conn, campaign.id)
            status = current if keep_status else campaign.status
            conn.run(
                "UPDATE campaigns SET advertiser_id = CAST(:advertiser AS uuid), name = :name, "
                "status = :status, cpm_bid = :cpm, daily_budget = :daily, "
                "lifetime_budget = :lifetime, updated_at = now() AT TIME ZONE 'UTC' "
                "WHERE id = CAST(:id AS uuid)",
                id=campaign.id,
                advertiser=campaign.advertiser_id,
                name=campaign.name,
                status=status,
                cpm=to_decimal(campaign.cpm_micros),
                daily=to_decimal(campaign.daily_budget_micros),
                lifetime=_optional_decimal(campaign.lifetime_budget_micros),
            )
            conn.run(
                "DELETE FROM campaign_targeting_rules WHERE campaign_id = CAST(:id AS uuid)",
                id=campaign.id,
            )
            _insert_rules(conn, [campaign])
            _upsert_ads(conn, campaign)
        record = self.get(campaign.id)
        assert record is not None
        return record

    def set_status(self, campaign_id: str, status: Literal["active", "paused"]) -> CampaignRecord:
        """Pause or resume; idempotent. NotFound if unknown, Conflict if the campaign ended."""
        with self._db.transaction() as conn:
            current = _lock(conn, campaign_id)
            if current != status:
                conn.run(
                    "UPDATE campaigns SET status = :status, "
                    "updated_at = now() AT TIME ZONE 'UTC' WHERE id = CAST(:id AS uuid)",
                    id=campaign_id,
                    status=status,
                )
        record = self.get(campaign_id)
        assert record is not None
        return record

    def delete(self, campaign_id: str) -> CampaignRecord:
        """Soft delete: the campaign ends for good (kept for its events and metrics)."""
        with self._db.transaction() as conn:
            current = _lock(conn, campaign_id, allow_ended=True)
            if current != "ended":
                conn.run(
                    "UPDATE campaigns SET status = 'ended', "
                    "updated_at = now() AT TIME ZONE 'UTC' WHERE id = CAST(:id AS uuid)",
                    id=campaign_id,
                )
        record = self.get(campaign_id)
        assert record is not None
        return record

    def _records(self, campaign_ids: Iterable[str]) -> list[CampaignRecord]:
        ids = sorted({i.lower() for i in campaign_ids if is_uuid(i)})
        if not ids:
            return []
        with self._db.transaction(read_only=True) as conn:
            rows = conn.run(
                f"SELECT {_COLUMNS} FROM campaigns "  # noqa: S608
                "WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id",
                ids=ids,
            )
            return _assemble(conn, rows)


def _lock(conn: Any, campaign_id: str, *, allow_ended: bool = False) -> str:
    """The campaign's status, its row locked for this transaction; NotFound / Conflict."""
    rows = (
        conn.run(
            "SELECT status FROM campaigns WHERE id = CAST(:id AS uuid) FOR UPDATE",
            id=campaign_id,
        )
        if is_uuid(campaign_id)
        else []
    )
    if not rows:
        raise NotFound(f"campaign {campaign_id} does not exist")
    status = str(rows[0][0])
    if status == "ended" and not allow_ended:
        raise Conflict(f"campaign {campaign_id} has ended (deleted); it cannot be changed")
    return status


def _insert(conn: Any, campaigns: Sequence[Campaign]) -> None:
    if not campaigns:
        return
    conn.run(
        "INSERT INTO campaigns (id, advertiser_id, name, status, cpm_bid, daily_budget, "
        "lifetime_budget) SELECT * FROM unnest(CAST(:ids AS uuid[]), "
        "CAST(:advertisers AS uuid[]), CAST(:names AS text[]), CAST(:statuses AS text[]), "
        "CAST(:cpms AS numeric[]), CAST(:dailies AS numeric[]), CAST(:lifetimes AS numeric[]))",
        ids=[c.id for c in campaigns],
        advertisers=[c.advertiser_id for c in campaigns],
        names=[c.name for c in campaigns],
        statuses=[c.status for c in campaigns],
        cpms=[to_decimal(c.cpm_micros) for c in campaigns],
        dailies=[to_decimal(c.daily_budget_micros) for c in campaigns],
        lifetimes=[_optional_decimal(c.lifetime_budget_micros) for c in campaigns],
    )
    _insert_rules(conn, campaigns)
    ads = [ad for c in campaigns for ad in c.ads]
    if ads:
        conn.run(
            "INSERT INTO ads (id, campaign_id, title, image_url, redirect_url) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:campaigns AS uuid[]), "
            "CAST(:titles AS text[]), CAST(:images AS text[]), CAST(:redirects AS text[]))",
            ids=[ad.id for ad in ads],
            campaigns=[ad.campaign_id for ad in ads],
            titles=[ad.title for ad in ads],
            images=[ad.image_url for ad in ads],
            redirects=[ad.redirect_url for ad in ads],
        )


def _insert_rules(conn: Any, campaigns: Sequence[Campaign]) -> None:
    rules = [(c.id, r.rule_type, r.rule_value) for c in campaigns for r in c.targeting_rules]
    if not rules:
        return
    conn.run(
        "INSERT INTO campaign_targeting_rules (campaign_id, rule_type, rule_value) "
        "SELECT * FROM unnest(CAST(:campaigns AS uuid[]), CAST(:rule_types AS text[]), "
        "CAST(:vals AS text[])) ON CONFLICT DO NOTHING",
        campaigns=[r[0] for r in rules],
        rule_types=[r[1] for r in rules],
        vals=[r[2] for r in rules],
    )


def _upsert_ads(conn: Any, campaign: Campaign) -> None:
    """Ads in the campaign: inserted or updated (un-removed); other ads of it marked removed."""
    ids = [ad.id for ad in campaign.ads]
    if ids:
        updated = conn.run(
            "INSERT INTO ads (id, campaign_id, title, image_url, redirect_url) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:campaigns AS uuid[]), "
            "CAST(:titles AS text[]), CAST(:images AS text[]), CAST(:redirects AS text[])) "
            "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, "
            "image_url = EXCLUDED.image_url, redirect_url = EXCLUDED.redirect_url, "
            "removed_at = NULL WHERE ads.campaign_id = EXCLUDED.campaign_id RETURNING id::text",
            ids=ids,
            campaigns=[campaign.id] * len(ids),
            titles=[ad.title for ad in campaign.ads],
            images=[ad.image_url for ad in campaign.ads],
            redirects=[ad.redirect_url for ad in campaign.ads],
        )
        foreign = set(ids) - {row[0] for row in updated}
        if foreign:
            raise Conflict(f"ads {', '.join(sorted(foreign))} belong to another campaign")
    conn.run(
        "UPDATE ads SET removed_at = now() AT TIME ZONE 'UTC' WHERE campaign_id = "
        "CAST(:id AS uuid) AND removed_at IS NULL AND NOT (id = ANY(CAST(:keep AS uuid[])))",
        id=campaign.id,
        keep=ids,
    )


def _assemble(conn: Any, rows: list[list[Any]]) -> list[CampaignRecord]:
    """Campaign rows plus their rules and ads (two more queries for any number of campaigns)."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    rules: dict[str, list[TargetingRule]] = {i: [] for i in ids}
    for cid, rule_type, value in conn.run(
        "SELECT campaign_id::text, rule_type, rule_value FROM campaign_targeting_rules "
        "WHERE campaign_id = ANY(CAST(:ids AS uuid[])) ORDER BY campaign_id, rule_type, rule_value",
        ids=ids,
    ):
        rules[cid].append(TargetingRule(rule_type=rule_type, rule_value=value))
    ads: dict[str, list[Ad]] = {i: [] for i in ids}
    for ad_id, cid, title, image, redirect in conn.run(
        "SELECT id::text, campaign_id::text, title, image_url, redirect_url FROM ads "
        "WHERE campaign_id = ANY(CAST(:ids AS uuid[])) AND removed_at IS NULL "
        "ORDER BY campaign_id, id",
        ids=ids,
    ):
        ads[cid].append(
            Ad(id=ad_id, campaign_id=cid, title=title, image_url=image, redirect_url=redirect)
        )
    records = []
    for cid, advertiser, name, status, cpm, daily, lifetime, created, updated in rows:
        campaign = Campaign(
            id=cid,
            advertiser_id=advertiser,
            name=name,
            status=status,
            cpm_micros=parse_micros(cpm),
            daily_budget_micros=parse_micros(daily),
            lifetime_budget_micros=None if lifetime is None else parse_micros(lifetime),
            targeting_rules=tuple(rules[cid]),
            ads=tuple(ads[cid]),
        )
        records.append(CampaignRecord(campaign, created, updated))
    return records


def _check_storable(campaign: Campaign) -> None:
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


def _optional_decimal(micros: Micros | None) -> Decimal | None:
    return None if micros is None else to_decimal(micros)


def is_uuid(value: str) -> bool:
    """True for a UUID in its 36-character text form (any case)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError) as exc:
        raise ValidationFailed("cursor: not a cursor this API returned", ["cursor"]) from exc
    if not isinstance(after, str) or not is_uuid(after):
        raise ValidationFailed("cursor: not a cursor this API returned", ["cursor"])
    return after
