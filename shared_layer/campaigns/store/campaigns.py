"""Campaigns in PostgreSQL: the record of every campaign, its targeting rules and its ads.

`CampaignStore`, the repository: create, get, get_many, list (filtered, keyset-paginated),
replace, set_status, delete, bulk_import (one transaction, all or nothing), load_active. It
takes and returns `models.Campaign` (money in integer micros) and converts to the specification's
DECIMAL columns exactly (`money.to_decimal` / `money.parse_micros`, never a float). The admin API's
JSON shape is `shared_layer.campaigns.domain.requests`.

Decisions (docs in functions/campaigns/README.md):

- Ids are UUIDs, as in the specification's schema: generated here unless the client sends one (bulk
  imports and demo data send theirs, so that a re-run conflicts instead of duplicating).
- DELETE is a soft delete: the campaign becomes ``ended`` (the specification's third status) and
  stays readable, because events_log and daily_metrics reference it and its analytics must survive.
  An ended campaign cannot be resumed, paused or replaced (409); deleting it again is harmless.
- Ads left out of a replacement are marked removed (``ads.removed_at``), never deleted: events
  reference them. Send an ad's ``id`` to keep it.
- Precision: the specification's columns hold a CPM with 4 decimals and budgets with 2; more
  decimals are a 400, not a silent rounding by PostgreSQL.

Example::

    store = CampaignStore(Database.from_url(url, password=secret))
    record = store.create(parse_campaign(body).to_campaign())
    page = store.list(status="active", limit=50)          # page.items, page.next_cursor
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal

from shared_layer.campaigns.domain.requests import (
    DEFAULT_PAGE_SIZE,
    MAX_BULK_CAMPAIGNS,
    MAX_PAGE_SIZE,
    CampaignRecord,
    check_storable,
    decode_cursor,
    decode_offset_cursor,
    encode_cursor,
    encode_offset_cursor,
    is_uuid,
)
from shared_layer.kernel.errors import Conflict, NotFound, ValidationFailed
from shared_layer.kernel.models import (
    Ad,
    Campaign,
    CampaignStatus,
    Daypart,
    FrequencyCap,
    SponsorshipGoal,
    TargetingRule,
)
from shared_layer.kernel.money import Micros, parse_micros, to_decimal
from shared_layer.kernel.storage.postgres import Database

__all__ = ["CampaignStore", "Page"]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[CampaignRecord]
    next_cursor: str | None


_SORT_COLUMNS: Final = {
    "name": "lower(name)",
    "createdAt": "created_at",
    "spend": "COALESCE(s.spend, 0)",
}
# A sorted list's spend: hourly_metrics (migration 0012) over the UTC days :first..:last.
_SPEND_JOIN: Final = (
    " LEFT JOIN (SELECT campaign_id, sum(spend) AS spend FROM hourly_metrics"
    " WHERE hour >= CAST(COALESCE(CAST(:first AS date), CAST(now() AT TIME ZONE 'UTC' AS date))"
    " AS timestamp) AND hour < CAST(COALESCE(CAST(:last AS date),"
    " CAST(now() AT TIME ZONE 'UTC' AS date)) AS timestamp) + interval '1 day'"
    " GROUP BY campaign_id) s ON s.campaign_id = campaigns.id"
)
_COLUMNS: Final = (
    "id::text, advertiser_id::text, name, status, cpm_bid, daily_budget, lifetime_budget, "
    "created_at, updated_at, pacing, time_zone, frequency_cap_impressions, "
    "frequency_cap_window_seconds, tier, goal_impressions, goal_period, "
    "to_json(exclusion_labels)::text, daypart::text, key_values::text, excluded_key_values::text"
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
            check_storable(campaign)
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
        text: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        spend_days: tuple[date | None, date | None] = (None, None),
    ) -> Page:
        """One page; `cursor` is the previous page's `next_cursor` (opaque).

        Unsorted: ordered by id, keyset-paginated. Sorted (`sort` name, createdAt or spend, the
        spend of hourly_metrics over the UTC days `spend_days`, today when absent): ties by id,
        paginated by offset. `text`: the name contains it, any case.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"limit: must be between 1 and {MAX_PAGE_SIZE}", ["limit"])
        conditions: builtins.list[str] = []
        params: dict[str, object] = {"limit": limit + 1}
        if status is not None:
            conditions.append("status = :status")
            params["status"] = status
        if advertiser_id is not None:
            if not is_uuid(advertiser_id):
                return Page([], None)
            conditions.append("advertiser_id = CAST(:advertiser AS uuid)")
            params["advertiser"] = advertiser_id
        if text is not None:
            conditions.append("strpos(lower(name), lower(:text)) > 0")
            params["text"] = text
        offset = 0
        if sort is not None:
            offset = decode_offset_cursor(cursor) if cursor is not None else 0
        elif cursor is not None:
            conditions.append("id > CAST(:after AS uuid)")
            params["after"] = decode_cursor(cursor)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        join, order = "", "id"
        if sort is not None:
            direction = "DESC" if descending else "ASC"
            order = f"{_SORT_COLUMNS[sort]} {direction}, id {direction}"
            params["offset"] = offset
        if sort == "spend":
            start, end = spend_days
            join = _SPEND_JOIN
            params["first"], params["last"] = start, end
        paging = " OFFSET :offset" if sort is not None else ""
        # Only fixed fragments are joined into the statement; every value is a parameter.
        sql = (
            f"SELECT {_COLUMNS} FROM campaigns{join} {where} "  # noqa: S608
            f"ORDER BY {order} LIMIT :limit{paging}"
        )
        with self._db.transaction(read_only=True) as conn:
            rows = conn.run(sql, **params)
            records = _assemble(conn, rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            next_cursor = (
                encode_offset_cursor(offset + limit)
                if sort is not None
                else encode_cursor(records[-1].campaign.id)
            )
        return Page(records, next_cursor)

    def replace(self, campaign: Campaign, *, keep_status: bool) -> CampaignRecord:
        """Replace a campaign's fields, rules and ads (ads left out are marked removed).

        `keep_status`: the request did not say a status; the stored one stays. NotFound if the
        campaign does not exist, Conflict if it ended.
        """
        check_storable(campaign)
        with self._db.transaction() as conn:
            current = _lock(conn, campaign.id)
            status = current if keep_status else campaign.status
            cap = campaign.frequency_cap
            conn.run(
                "UPDATE campaigns SET advertiser_id = CAST(:advertiser AS uuid), name = :name, "
                "status = :status, cpm_bid = :cpm, daily_budget = :daily, "
                "lifetime_budget = :lifetime, pacing = :pacing, time_zone = :zone, "
                "frequency_cap_impressions = CAST(:cap_count AS integer), "
                "frequency_cap_window_seconds = CAST(:cap_window AS integer), "
                "tier = :tier, goal_impressions = CAST(:goal AS bigint), "
                "goal_period = CAST(:goal_period AS text), "
                "exclusion_labels = "
                "ARRAY(SELECT jsonb_array_elements_text(CAST(:labels AS jsonb))), "
                "daypart = CAST(:daypart AS jsonb), key_values = CAST(:kvs AS jsonb), "
                "excluded_key_values = CAST(:no_kvs AS jsonb), "
                "updated_at = now() AT TIME ZONE 'UTC' WHERE id = CAST(:id AS uuid)",
                id=campaign.id,
                advertiser=campaign.advertiser_id,
                name=campaign.name,
                status=status,
                cpm=to_decimal(campaign.cpm_micros),
                daily=to_decimal(campaign.daily_budget_micros),
                lifetime=_optional_decimal(campaign.lifetime_budget_micros),
                pacing=campaign.pacing,
                zone=campaign.time_zone,
                cap_count=cap.impressions if cap else None,
                cap_window=cap.window_seconds if cap else None,
                **_decisioning_params([campaign], single=True),
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

    def _records(self, campaign_ids: Iterable[str]) -> builtins.list[CampaignRecord]:
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
        "lifetime_budget, pacing, time_zone, frequency_cap_impressions, "
        "frequency_cap_window_seconds, tier, goal_impressions, goal_period, exclusion_labels, "
        "daypart, key_values, excluded_key_values) SELECT u.id, u.advertiser, u.name, u.status, "
        "u.cpm, u.daily, u.lifetime, u.pacing, u.zone, u.cap_count, u.cap_window, u.tier, "
        "u.goal, u.goal_period, ARRAY(SELECT jsonb_array_elements_text(u.labels)), u.daypart, "
        "u.kvs, u.no_kvs FROM unnest(CAST(:ids AS uuid[]), "
        "CAST(:advertisers AS uuid[]), CAST(:names AS text[]), CAST(:statuses AS text[]), "
        "CAST(:cpms AS numeric[]), CAST(:dailies AS numeric[]), CAST(:lifetimes AS numeric[]), "
        "CAST(:pacings AS text[]), CAST(:zones AS text[]), CAST(:cap_counts AS integer[]), "
        "CAST(:cap_windows AS integer[]), CAST(:tier AS text[]), CAST(:goal AS bigint[]), "
        "CAST(:goal_period AS text[]), CAST(:labels AS jsonb[]), CAST(:daypart AS jsonb[]), "
        "CAST(:kvs AS jsonb[]), CAST(:no_kvs AS jsonb[])) AS u(id, advertiser, name, status, "
        "cpm, daily, lifetime, pacing, zone, cap_count, cap_window, tier, goal, goal_period, "
        "labels, daypart, kvs, no_kvs)",
        ids=[c.id for c in campaigns],
        advertisers=[c.advertiser_id for c in campaigns],
        names=[c.name for c in campaigns],
        statuses=[c.status for c in campaigns],
        cpms=[to_decimal(c.cpm_micros) for c in campaigns],
        dailies=[to_decimal(c.daily_budget_micros) for c in campaigns],
        lifetimes=[_optional_decimal(c.lifetime_budget_micros) for c in campaigns],
        pacings=[c.pacing for c in campaigns],
        zones=[c.time_zone for c in campaigns],
        cap_counts=[c.frequency_cap.impressions if c.frequency_cap else None for c in campaigns],
        cap_windows=[
            c.frequency_cap.window_seconds if c.frequency_cap else None for c in campaigns
        ],
        **_decisioning_params(campaigns),
    )
    _insert_rules(conn, campaigns)
    ads = [ad for c in campaigns for ad in c.ads]
    if ads:
        conn.run(
            "INSERT INTO ads (id, campaign_id, title, image_url, redirect_url, width, height) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:campaigns AS uuid[]), "
            "CAST(:titles AS text[]), CAST(:images AS text[]), CAST(:redirects AS text[]), "
            "CAST(:widths AS integer[]), CAST(:heights AS integer[]))",
            ids=[ad.id for ad in ads],
            campaigns=[ad.campaign_id for ad in ads],
            titles=[ad.title for ad in ads],
            images=[ad.image_url for ad in ads],
            redirects=[ad.redirect_url for ad in ads],
            widths=[ad.width for ad in ads],
            heights=[ad.height for ad in ads],
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
            "INSERT INTO ads (id, campaign_id, title, image_url, redirect_url, width, height) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:campaigns AS uuid[]), "
            "CAST(:titles AS text[]), CAST(:images AS text[]), CAST(:redirects AS text[]), "
            "CAST(:widths AS integer[]), CAST(:heights AS integer[])) "
            "ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, "
            "image_url = EXCLUDED.image_url, redirect_url = EXCLUDED.redirect_url, "
            "width = EXCLUDED.width, height = EXCLUDED.height, "
            "removed_at = NULL WHERE ads.campaign_id = EXCLUDED.campaign_id RETURNING id::text",
            ids=ids,
            campaigns=[campaign.id] * len(ids),
            titles=[ad.title for ad in campaign.ads],
            images=[ad.image_url for ad in campaign.ads],
            redirects=[ad.redirect_url for ad in campaign.ads],
            widths=[ad.width for ad in campaign.ads],
            heights=[ad.height for ad in campaign.ads],
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
    for ad_id, cid, title, image, redirect, width, height in conn.run(
        "SELECT id::text, campaign_id::text, title, image_url, redirect_url, width, height "
        "FROM ads "
        "WHERE campaign_id = ANY(CAST(:ids AS uuid[])) AND removed_at IS NULL "
        "ORDER BY campaign_id, id",
        ids=ids,
    ):
        ads[cid].append(
            Ad(
                id=ad_id,
                campaign_id=cid,
                title=title,
                image_url=image,
                redirect_url=redirect,
                width=width,
                height=height,
            )
        )
    records = []
    for row in rows:
        cid, advertiser, name, status, cpm, daily, lifetime, created, updated = row[:9]
        pacing, zone, cap_count, cap_window = row[9:13]
        tier, goal_count, goal_period, labels, daypart, kvs, no_kvs = row[13:20]
        cap = None
        if cap_count is not None:
            cap = FrequencyCap(impressions=cap_count, window_seconds=cap_window)
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
            pacing=pacing,
            time_zone=zone,
            frequency_cap=cap,
            tier=tier,
            goal=(
                None
                if goal_count is None
                else SponsorshipGoal(impressions=goal_count, period=goal_period)
            ),
            exclusion_labels=tuple(json.loads(labels)),
            daypart=None if daypart is None else Daypart.model_validate_json(daypart),
            key_values=json.loads(kvs),
            excluded_key_values=json.loads(no_kvs),
        )
        records.append(CampaignRecord(campaign, created, updated))
    return records


def _decisioning_params(campaigns: Sequence[Campaign], *, single: bool = False) -> dict[str, Any]:
    """The tier, goal, labels, daypart and key-value parameters of these campaigns (JSON text
    for the JSONB columns); `single`: one campaign's values rather than arrays."""
    params: dict[str, list[Any]] = {
        "tier": [c.tier for c in campaigns],
        "goal": [c.goal.impressions if c.goal else None for c in campaigns],
        "goal_period": [c.goal.period if c.goal else None for c in campaigns],
        "labels": [json.dumps(list(c.exclusion_labels)) for c in campaigns],
        "daypart": [c.daypart.model_dump_json() if c.daypart else None for c in campaigns],
        "kvs": [json.dumps(c.key_values) for c in campaigns],
        "no_kvs": [json.dumps(c.excluded_key_values) for c in campaigns],
    }
    if single:
        return {name: values[0] for name, values in params.items()}
    return params


def _optional_decimal(micros: Micros | None) -> Decimal | None:
    return None if micros is None else to_decimal(micros)
