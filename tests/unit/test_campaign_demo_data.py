"""Demo campaigns: deterministic, valid for the campaigns API, varied as the issue asks."""

from __future__ import annotations

import json
from collections import Counter

from localplatform import demo_data
from shared_layer.campaigns.domain.requests import parse_bulk


def test_the_same_seed_gives_the_same_campaigns_and_another_seed_others():
    assert demo_data.generate(50) == demo_data.generate(50)
    assert demo_data.generate(50, seed=1) != demo_data.generate(50, seed=2)


def test_every_demo_campaign_passes_the_api_validation():
    campaigns = demo_data.generate(1000)
    chunk = [demo_data._json_ready(c) for c in campaigns]
    assert len(parse_bulk(json.dumps({"campaigns": chunk})).campaigns) == 1000


def test_a_realistic_mix():
    campaigns = demo_data.generate(300)
    assert len(campaigns) == 300
    statuses = Counter(c["status"] for c in campaigns)
    assert statuses["active"] > 200 and statuses["paused"] > 10
    assert all(0.5 <= c["cpmBid"] <= 12 for c in campaigns)
    untargeted = [c for c in campaigns if not c["targetingRules"] and c["status"] == "active"]
    assert len(untargeted) > 30  # any request finds an ad at once
    rule_types = Counter(r["ruleType"] for c in campaigns for r in c["targetingRules"])
    assert set(rule_types) == {"country", "device_type", "interest", "age_range", "placement"}
    assert len({c["advertiserId"] for c in campaigns}) > 30
    # Budgets: a day of the most expensive impressions is still thousands of ads.
    assert min(c["dailyBudget"] / (c["cpmBid"] / 1000) for c in campaigns) > 10_000
