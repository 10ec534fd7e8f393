"""The daily-metrics function in process, against the test platform's PostgreSQL.

The handler is built as the function builds it, with this platform's settings, and called with
exactly what the connector sends (its own payload code builds the bodies): a batch counts its
events and answers the counts; malformed records, events of unknown campaigns and days outside
the retention are set aside without failing the batch; one record per call (X-Kafka-* headers)
works too; a body that is not a delivery is a 400; PostgreSQL out of reach is a 503 with the
error body.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY

from localplatform.profile import PROFILES, REPO_ROOT
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.composition.counting import DailyMetricsSettings
from shared_layer.kernel.http import Handler
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.settings import load_settings
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from tests.support import FakeKafkaRecord, free_port

from .campaign_support import campaign_request, new_id, unknown_campaign_impression

sys.path.insert(0, str(REPO_ROOT / "infra" / "connector"))
from kafka_connector.payloads import batch_body, batch_headers, record_headers

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]
T = TypeVar("T")


def load_function(name: str) -> ModuleType:
    env = PROFILE.host_env()
    os.environ.setdefault("REDIS_URL", env["REDIS_URL"])
    os.environ.setdefault("DATABASE_URL", env["DATABASE_URL"])
    os.environ.setdefault("OPENFAAS_SECRETS_DIR", str(PROFILE.secrets_dir))
    spec = importlib.util.spec_from_file_location(
        f"{name.replace('-', '_')}_under_test", REPO_ROOT / "functions" / name / "handler.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def platform_settings(cls: type[T]) -> T:
    """The settings `cls` of a function, read from this platform's addresses and secrets."""
    return load_settings(cls, environ=PROFILE.host_env(), secrets_dir=PROFILE.secrets_dir)


def post(handle: Handler, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    event = SimpleNamespace(body=body, headers=headers, method="POST", query={}, path="/")
    response = handle(event, None)
    return response["statusCode"], json.loads(response["body"])


def as_batch(*values: bytes | None, partition: int = 0) -> tuple[bytes, dict[str, str]]:
    messages = [FakeKafkaRecord(v, b"campaign", 500 + i, partition) for i, v in enumerate(values)]
    return batch_body(messages), batch_headers(messages, "ads-kafka-connector")


@pytest.fixture(scope="module")
def function() -> ModuleType:
    return load_function("daily-metrics")


@pytest.fixture(scope="module")
def handler(function: ModuleType) -> Handler:
    """The function's handler, built as the function builds it, over this platform."""
    return function.build(platform_settings(DailyMetricsSettings))


@pytest.fixture
def paused_campaign(db: Database) -> Campaign:
    made = campaign_request(new_id()).to_campaign(status="paused")
    return CampaignStore(db).create(made).campaign


def impression(c: Campaign, price: int = 2_500, at: datetime | None = None) -> AdEvent:
    return AdEvent.impression(
        impression_id=str(uuid.uuid4()),
        campaign_id=c.id,
        ad_id=c.ads[0].id,
        user_id="user-1",
        placement_id="placement-001",
        bid_cpm_micros=price * 1_000,
        price_micros=price,
        at=at,
    )


def counted(db: Database, c: Campaign) -> tuple[int, int]:
    rows = db.run(
        "SELECT sum(impressions), sum(clicks) FROM daily_metrics "
        "WHERE campaign_id = CAST(:c AS uuid)",
        c=c.id,
    )
    return (int(rows[0][0] or 0), int(rows[0][1] or 0))


def rejected_total(reason: str) -> float:
    return REGISTRY.get_sample_value("daily_metrics_rejected_total", {"reason": reason}) or 0.0


def test_a_connector_batch_is_counted_and_answered_with_the_counts(handler, db, paused_campaign):
    events = [impression(paused_campaign) for _ in range(30)]
    events.append(
        AdEvent.click(
            impression_id=events[0].impression_id,
            campaign_id=paused_campaign.id,
            ad_id=paused_campaign.ads[0].id,
            user_id="user-1",
            placement_id="placement-001",
        )
    )
    body, headers = as_batch(*(e.to_bytes() for e in events))
    assert post(handler, body, headers) == (
        200,
        {"received": 31, "counted": 31, "duplicates": 0, "rejected": 0},
    )
    assert post(handler, body, headers) == (
        200,
        {"received": 31, "counted": 0, "duplicates": 31, "rejected": 0},
    )
    assert counted(db, paused_campaign) == (30, 1)


def test_records_that_cannot_count_are_set_aside_and_the_rest_counts(handler, db, paused_campaign):
    before = {r: rejected_total(r) for r in ("invalid", "too-old", "unknown-campaign")}
    good = impression(paused_campaign)
    ghost = unknown_campaign_impression()
    ancient = impression(paused_campaign, at=datetime.now(UTC) - timedelta(days=45))
    body, headers = as_batch(
        b"not json at all",
        good.to_bytes(),
        b'{"eventId": "x"}',
        ghost.to_bytes(),
        ancient.to_bytes(),
    )
    assert post(handler, body, headers) == (
        200,
        {"received": 5, "counted": 1, "duplicates": 0, "rejected": 4},
    )
    assert counted(db, paused_campaign) == (1, 0)
    assert rejected_total("invalid") == before["invalid"] + 2
    assert rejected_total("too-old") == before["too-old"] + 1
    assert rejected_total("unknown-campaign") == before["unknown-campaign"] + 1


def test_one_record_per_call_is_counted_too(handler, db, paused_campaign):
    event = impression(paused_campaign)
    headers = record_headers(
        FakeKafkaRecord(event.to_bytes(), b"campaign", 9, 0),
        "ads-kafka-connector",
        "application/json",
    )
    assert post(handler, event.to_bytes(), headers)[1]["counted"] == 1
    assert post(handler, event.to_bytes(), headers)[1]["duplicates"] == 1
    assert counted(db, paused_campaign) == (1, 0)


@pytest.mark.parametrize(
    "body",
    [b'[{"topic": "impressions"}]', b"[broken", b"[1]"],
    ids=["no-place", "not-json", "not-records"],
)
def test_a_body_that_is_no_delivery_is_a_400(handler, body):
    status, answer = post(handler, body, {"Content-Type": "application/json"})
    assert status == 400 and answer["error"] == "INVALID_REQUEST" and answer["requestId"]


def test_postgresql_out_of_reach_is_a_503_so_the_connector_tries_again(function, paused_campaign):
    nowhere = Database.from_url(f"postgresql://adserver@127.0.0.1:{free_port()}/adserver")
    handle = function.serve_counts(DailyMetrics(nowhere, retention_days=30))
    body, headers = as_batch(impression(paused_campaign).to_bytes())
    status, answer = post(handle, body, headers)
    assert status == 503
    assert answer["error"] == "UPSTREAM_UNAVAILABLE" and set(answer) == {
        "error",
        "message",
        "requestId",
    }


def test_the_retention_setting_is_checked_at_start():
    from shared_layer.kernel.errors import InvalidSettings

    with pytest.raises(InvalidSettings, match="EVENTS_RETENTION_DAYS"):
        load_settings(
            DailyMetricsSettings,
            environ={"DATABASE_URL": "postgresql://a@b/c", "EVENTS_RETENTION_DAYS": "90"},
            secrets_dir=Path("/nonexistent"),
        )
