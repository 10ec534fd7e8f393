"""CampaignStore against the test platform's PostgreSQL: round trips, pages, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.errors import Conflict, NotFound, UpstreamUnavailable, ValidationFailed
from shared_layer.kernel.storage.postgres import Database

from .campaign_support import TEST_PLACEMENT, campaign, new_id


@pytest.fixture(scope="module")
def store(db: Database) -> CampaignStore:
    return CampaignStore(db)


def test_a_campaign_round_trips_with_exact_money_rules_and_ads(store):
    advertiser = new_id()
    original = campaign(
        advertiser,
        cpmBid=12.3456,
        dailyBudget=100.01,
        lifetimeBudget=999999999.99,
        targetingRules=[
            {"ruleType": "country", "ruleValue": "US"},
            {"ruleType": "country", "ruleValue": "GB"},
            {"ruleType": "device_type", "ruleValue": "mobile"},
            {"ruleType": "age_range", "ruleValue": "18-24"},
            {"ruleType": "interest", "ruleValue": "tech"},
            {"ruleType": "placement", "ruleValue": TEST_PLACEMENT},
        ],
    )
    record = store.create(original)
    assert record.campaign == original
    assert record.campaign.cpm_micros == 12_345_600
    assert record.campaign.daily_budget_micros == 100_010_000
    assert record.campaign.lifetime_budget_micros == 999_999_999_990_000
    assert store.get(original.id).campaign == original
    assert record.created_at <= record.updated_at


def test_get_many_returns_what_exists_and_ignores_the_rest(store):
    advertiser = new_id()
    a, b = campaign(advertiser), campaign(advertiser, status="paused")
    store.bulk_import([a, b])
    found = store.get_many([a.id, b.id, new_id(), "not-a-uuid"])
    assert sorted(found, key=lambda c: c.id) == sorted([a, b], key=lambda c: c.id)
    assert store.get("not-a-uuid") is None and store.get(new_id()) is None


def test_replace_keeps_named_ads_marks_the_others_removed_and_replaces_rules(store):
    advertiser = new_id()
    first = store.create(
        campaign(
            advertiser,
            ads=[
                {
                    "title": "keep",
                    "imageUrl": "https://a.test/1.png",
                    "redirectUrl": "https://a.test/",
                },
                {
                    "title": "drop",
                    "imageUrl": "https://a.test/2.png",
                    "redirectUrl": "https://a.test/",
                },
            ],
        )
    ).campaign
    kept = next(ad for ad in first.ads if ad.title == "keep")
    update = campaign(
        advertiser,
        cpmBid=3.5,
        targetingRules=[
            {"ruleType": "device_type", "ruleValue": "desktop"},
            {"ruleType": "placement", "ruleValue": TEST_PLACEMENT},
        ],
        ads=[
            {
                "id": kept.id,
                "title": "kept, renamed",
                "imageUrl": "https://a.test/1.png",
                "redirectUrl": "https://a.test/",
            },
            {"title": "new", "imageUrl": "https://a.test/3.png", "redirectUrl": "https://a.test/"},
        ],
    ).model_copy(update={"id": first.id})
    update = update.model_copy(
        update={"ads": tuple(ad.model_copy(update={"campaign_id": first.id}) for ad in update.ads)}
    )
    after = store.replace(update, keep_status=True).campaign
    assert after.cpm_micros == 3_500_000
    assert [r.rule_value for r in after.targeting_rules] == ["desktop", TEST_PLACEMENT]
    assert sorted(ad.title for ad in after.ads) == ["kept, renamed", "new"]
    assert kept.id in {ad.id for ad in after.ads}
    assert after.status == "active"


def test_an_ad_of_another_campaign_cannot_be_taken_over(store):
    advertiser = new_id()
    owner = store.create(campaign(advertiser)).campaign
    thief = store.create(campaign(advertiser)).campaign
    stolen = owner.ads[0].model_copy(update={"campaign_id": thief.id})
    with pytest.raises(Conflict):
        store.replace(thief.model_copy(update={"ads": (stolen,)}), keep_status=True)
    assert store.get(thief.id).campaign == thief


def test_pause_resume_and_soft_delete(store):
    c = store.create(campaign(new_id())).campaign
    assert store.set_status(c.id, "paused").campaign.status == "paused"
    assert store.set_status(c.id, "paused").campaign.status == "paused"  # idempotent
    assert store.set_status(c.id, "active").campaign.status == "active"
    assert store.delete(c.id).campaign.status == "ended"
    assert store.delete(c.id).campaign.status == "ended"  # harmless again
    assert store.get(c.id).campaign.status == "ended"  # kept for its events and analytics
    with pytest.raises(Conflict):
        store.set_status(c.id, "active")
    with pytest.raises(Conflict):
        store.replace(c, keep_status=True)
    for action in (
        lambda: store.set_status(new_id(), "paused"),
        lambda: store.delete(new_id()),
        lambda: store.replace(campaign(new_id()), keep_status=True),
        lambda: store.delete("not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            action()


def test_load_active_holds_active_campaigns_only(store):
    advertiser = new_id()
    active = store.create(campaign(advertiser)).campaign
    paused = store.create(campaign(advertiser, status="paused")).campaign
    ended = store.create(campaign(advertiser)).campaign
    store.delete(ended.id)
    loaded = {c.id: c for c in store.load_active()}
    assert loaded[active.id] == active
    assert paused.id not in loaded and ended.id not in loaded
    assert all(c.status == "active" for c in loaded.values())


def test_pages_cover_every_campaign_once_filtered_by_advertiser_and_status(store):
    advertiser = new_id()
    made = [campaign(advertiser, status="paused" if i % 3 == 0 else "active") for i in range(8)]
    store.bulk_import(made)
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list(advertiser_id=advertiser, limit=3, cursor=cursor)
        pages += 1
        seen += [r.campaign.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and seen == sorted(c.id for c in made)
    paused = store.list(advertiser_id=advertiser, status="paused", limit=100)
    assert {r.campaign.id for r in paused.items} == {c.id for c in made if c.status == "paused"}
    assert paused.next_cursor is None
    assert store.list(advertiser_id=new_id()).items == []
    with pytest.raises(ValidationFailed):
        store.list(limit=101)
    with pytest.raises(ValidationFailed):
        store.list(cursor="bm90IGEgY3Vyc29y")


def test_a_sorted_list_orders_every_campaign_by_name_or_range_spend_and_searches_names(store, db):
    advertiser = new_id()
    made = [campaign(advertiser, name=f"Spend {n} {'Needle' if n == 4 else ''}") for n in range(7)]
    store.bulk_import(made)
    spend = {c.id: n * 10 for n, c in enumerate(made)} | {made[2].id: 500}
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    for campaign_id, amount in spend.items():
        for hour, share in ((today, amount), (today - timedelta(days=3), 1000 - amount)):
            db.run(
                "INSERT INTO hourly_metrics (hour, campaign_id, ad_id, spend)"
                " VALUES (:h, CAST(:c AS uuid), CAST(:a AS uuid), :s)",
                h=hour,
                c=campaign_id,
                a=new_id(),
                s=Decimal(share),
            )

    def listed(**kwargs) -> list[str]:
        seen, cursor = [], None
        while True:
            page = store.list(advertiser_id=advertiser, limit=3, cursor=cursor, **kwargs)
            seen += [r.campaign.id for r in page.items]
            if (cursor := page.next_cursor) is None:
                return seen

    try:
        by_today = sorted(spend, key=lambda i: (-spend[i], i))
        assert listed(sort="spend", descending=True) == by_today  # today, paged by offset
        days = (today.date() - timedelta(days=3), today.date() - timedelta(days=3))
        assert listed(sort="spend", spend_days=days) == sorted(spend, key=lambda i: (-spend[i], i))
        assert listed(sort="name", descending=True) == [c.id for c in reversed(made)]
        assert listed(text="needle") == [made[4].id]
        assert listed(sort="name", text="SPEND 1") == [made[1].id]
    finally:
        db.run(
            "DELETE FROM hourly_metrics WHERE campaign_id = ANY(CAST(:c AS uuid[]))", c=list(spend)
        )


def test_bulk_import_is_all_or_nothing_when_one_campaign_conflicts(store):
    advertiser = new_id()
    existing = store.create(campaign(advertiser)).campaign
    batch = [campaign(advertiser) for _ in range(4)]
    with pytest.raises(Conflict):
        store.bulk_import([*batch, existing])
    assert store.get_many([c.id for c in batch]) == []


def test_bulk_import_is_all_or_nothing_when_a_late_statement_fails(store):
    # The campaigns insert succeeds; the ads insert then fails on an ad id taken elsewhere.
    advertiser = new_id()
    taken = store.create(campaign(advertiser)).campaign.ads[0]
    batch = [campaign(advertiser) for _ in range(3)]
    thief = batch[-1]
    batch[-1] = thief.model_copy(
        update={"ads": (taken.model_copy(update={"campaign_id": thief.id}),)}
    )
    with pytest.raises(Conflict):
        store.bulk_import(batch)
    assert store.get_many([c.id for c in batch]) == []
    assert store.list(advertiser_id=advertiser).items[0].campaign.ads[0] == taken


def test_bulk_import_of_a_thousand_campaigns(store):
    advertiser = new_id()
    batch = [campaign(advertiser) for _ in range(1000)]
    assert store.bulk_import(batch) == 1000
    assert len(store.get_many([c.id for c in batch])) == 1000


def test_an_unreachable_database_is_upstream_unavailable():
    db = Database.from_url("postgresql://adserver@127.0.0.1:1/adserver", password="x")  # noqa: S106
    with pytest.raises(UpstreamUnavailable):
        CampaignStore(db).get(new_id())


def test_a_broken_pooled_connection_is_replaced(db, store):
    c = store.create(campaign(new_id())).campaign
    with db.connection() as conn:
        pid = conn.run("SELECT pg_backend_pid()")[0][0]
        db.run("SELECT pg_terminate_backend(:pid)", pid=pid)  # from another pooled connection
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(store.get(c.id).campaign == c)
        except UpstreamUnavailable:
            outcomes.append("unavailable")
    assert outcomes[-1] is True and outcomes.count("unavailable") <= 1


def test_tiers_labels_daypart_key_values_and_ad_sizes_round_trip_and_are_replaced(store):
    advertiser = new_id()
    ad = {
        "title": "sized",
        "imageUrl": "https://cdn.example.com/a.png",
        "redirectUrl": "https://example.com/",
        "width": 300,
        "height": 250,
    }
    original = campaign(
        advertiser,
        tier="sponsorship",
        goal={"impressions": 10_000, "period": "day"},
        exclusionLabels=["airline", "auto"],
        daypart={"days": ["mon", "fri"], "hours": [9, 10, 16]},
        keyValues={"section": ["news", "sports"], "lang": ["fr"]},
        excludedKeyValues={"section": ["politics"]},
        ads=[ad],
    )
    record = store.create(original)
    assert record.campaign == original
    assert record.campaign.ads[0].size == "300x250"
    assert store.load_active() and original in store.load_active()
    house = campaign(
        advertiser, id=original.id, tier="house", ads=[{**ad, "width": None, "height": None}]
    )
    replaced = store.replace(house, keep_status=True)
    assert replaced.campaign.tier == "house" and replaced.campaign.goal is None
    assert replaced.campaign.daypart is None and replaced.campaign.key_values == {}
    assert replaced.campaign.exclusion_labels == ()
    assert all(a.size is None for a in replaced.campaign.ads)


def test_a_campaign_without_the_new_fields_is_stored_as_a_standard_one(store):
    record = store.create(campaign(new_id()))
    assert record.campaign.tier == "standard" and record.campaign.goal is None
    assert record.campaign.exclusion_labels == () and record.campaign.daypart is None
    assert record.campaign.key_values == {} and record.campaign.excluded_key_values == {}
