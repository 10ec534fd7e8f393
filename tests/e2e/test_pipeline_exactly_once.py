"""Exactly-once effect of the event pipeline, end to end, under failures.

Real campaigns (made through the campaigns API), then N impressions and M clicks produced to the
platform's `impressions` and `clicks` topics (keyed by campaign id, as serve and click do),
while the pipeline is disrupted again and again:

- the platform's connector process is SIGKILLed three times mid-stream (its supervisor starts
  it again; whatever it had delivered but not committed is delivered again);
- storms of pg_terminate_backend on daily-metrics' PostgreSQL connections: statements die
  mid-flight, some after COMMIT but before the answer, so calls fail (503) and are retried by
  the function and by the connector. Two last 2 s, within the connector's retry schedule
  (3.1 s); one lasts 8 s (every 5 ms), so daily-metrics stays unavailable beyond the schedule:
  the connector must hold those batches for its next cycles, never dead-letter them;
- a storm of CLIENT KILL on live-counters' Redis connections (named `live-counters`).

Then, once the connector's group has committed every offset: daily_metrics, the Redis live
counters and events_log hold exactly N impressions and M clicks, spend equals the sum of the
prices to the micro, and campaigns.lifetime_spent matches; and the disruptions really happened
(connector restarts, daily-metrics answering 503, batches held, none dead-lettered).
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date

import pytest
import redis
import requests
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from localplatform import secrets
from localplatform.components.connector import Connector
from localplatform.components.postgres import connect
from shared_layer.kernel.money import to_decimal
from shared_layer.pipeline.domain.events import CLICKS_TOPIC, IMPRESSIONS_TOPIC, AdEvent
from shared_layer.pipeline.store.live_counters import stats_key
from tests.support import wait_for

from .test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    replicas,
    unique_placement,
)

IMPRESSIONS = 6_000
CLICKS = 2_000
CAMPAIGNS = 6
PRODUCE_SECONDS = 20.0
CONNECTOR_KILLS = 3
DRAIN_TIMEOUT_S = 240.0
STORM_SECONDS = 2.0  # below the connector's 3.1 s of backoff: a batch outlives the storm
LONG_STORM_SECONDS = 8.0  # beyond it: the connector holds batches instead of giving up
GROUP = "ads-kafka-connector"

_METRIC = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


class ConnectorProbe:
    """The platform's connector: its process id and restarts, from its health port."""

    def __init__(self) -> None:
        self.url = Connector(PROFILE).address()

    def health(self) -> dict | None:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None

    def metric(self, name: str) -> float:
        """The sum of a counter's samples (every label set)."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )

    def kill(self) -> None:
        """SIGKILL the connector process (not its supervisor) and wait for its successor."""
        before = wait_for(lambda: (h := self.health()) and h.get("pid") and h, 30)
        assert before, "the platform's connector is not answering"
        os.kill(before["pid"], signal.SIGKILL)
        after = wait_for(lambda: (h := self.health()) and h.get("pid") != before["pid"], 60)
        assert after, "the connector was not restarted after SIGKILL"


def answered(function: str, code: str) -> float:
    """Calls a function's replicas answered with `code`, from their own metrics (port 8000)."""
    total = 0.0
    for ip in replicas(function).values():
        text = requests.get(f"http://{ip}:8000/metrics", timeout=5).text
        for line in text.splitlines():
            match = _METRIC.match(line)
            if match and match.group(1) == "function_requests_total":
                if f'code="{code}"' in match.group(2).split(","):
                    total += float(match.group(3))
    return total


def campaigns_with_ads(count: int) -> dict[str, str]:
    """`count` new campaigns through the admin API (then paused: no auction picks them, their
    events still count); campaign id -> its ad id."""
    maker = Campaigns()
    token = secrets.read(PROFILE, "campaigns-admin-token")
    made = {}
    for _ in range(count):
        body = campaign_body(
            cpm="1000", daily="1000000", rules=[("placement", unique_placement("exactly-once"))]
        )
        campaign_id = maker.create(body)
        maker.pause(campaign_id)
        r = requests.get(
            f"{GATEWAY}/function/campaigns/{campaign_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        made[campaign_id] = r.json()["ads"][0]["id"]
    return made


def make_events(ads: dict[str, str], rng: random.Random) -> tuple[list[AdEvent], list[AdEvent]]:
    campaigns = sorted(ads)
    impressions = []
    for n in range(IMPRESSIONS):
        c = campaigns[n % len(campaigns)]
        impressions.append(
            AdEvent.impression(
                impression_id=str(uuid.uuid4()),
                campaign_id=c,
                ad_id=ads[c],
                user_id=f"user-{rng.randrange(10_000)}",
                placement_id="placement-007",
                bid_cpm_micros=1_000_000_000,
                price_micros=rng.randint(1, 2_000_000),  # odd micro amounts
                country="US",
                device_type="mobile",
            )
        )
    clicks = [
        AdEvent.click(
            impression_id=i.impression_id,
            campaign_id=i.campaign_id,
            ad_id=i.ad_id,
            user_id=i.user_id,
            placement_id=i.placement_id,
        )
        for i in rng.sample(impressions, CLICKS)
    ]
    return impressions, clicks


class Storm:
    """Repeat `action` every `interval_s` for `seconds` in a thread; counts what it did."""

    def __init__(self, action: Callable[[], int], seconds: float, interval_s: float) -> None:
        self.hits = 0
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(action, seconds, interval_s))

    def _run(self, action: Callable[[], int], seconds: float, interval_s: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.hits += action()
            except Exception as exc:  # the storm itself must not die quietly
                self.errors.append(exc)
                return
            time.sleep(interval_s)

    def start(self) -> Storm:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(60)


def terminate_daily_metrics_backends(conn) -> Callable[[], int]:
    def action() -> int:
        rows = conn.run(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query LIKE '%INSERT INTO events_log%'"
        )
        return int(rows[0][0])

    return action


def kill_live_counters_clients(client: redis.Redis) -> Callable[[], int]:
    def action() -> int:
        killed = 0
        for c in client.client_list():
            if c.get("name") == "live-counters":
                killed += int(client.client_kill_filter(_id=c["id"]) or 0)
        return killed

    return action


def committed_everything(admin: AdminClient) -> bool:
    """The connector's group has committed every offset of both topics (nothing in flight)."""
    partitions = [
        TopicPartition(topic, p)
        for topic in (IMPRESSIONS_TOPIC, CLICKS_TOPIC)
        for p in admin.list_topics(topic, timeout=10).topics[topic].partitions
    ]
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10)
    request = [ConsumerGroupTopicPartitions(GROUP, partitions)]
    committed = admin.list_consumer_group_offsets(request, request_timeout=10)[GROUP].result()
    done = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions}
    for tp, future in ends.items():
        end = future.result().offset
        if end > 0 and done.get((tp.topic, tp.partition), -1) < end:
            return False
    return True


def dead_letters(admin: AdminClient) -> int:
    """Records ever written to the dead-letter topic (the sum of its partitions' ends)."""
    topic = "events-dlq"
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    ends = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}, request_timeout=10
    )
    return sum(future.result().offset for future in ends.values())


@pytest.fixture(scope="module")
def pg() -> Iterator:
    conn = connect(PROFILE)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def rds() -> redis.Redis:
    return redis.Redis.from_url(PROFILE.host_env()["REDIS_URL"], socket_timeout=5)


def pipeline_numbers(pg, campaigns: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """campaign -> (impressions, clicks, spend micros in daily_metrics, lifetime_spent micros)."""
    rows = pg.run(
        "SELECT CAST(c.id AS text), COALESCE(sum(m.impressions), 0), COALESCE(sum(m.clicks), 0), "
        "COALESCE(sum(m.spend), 0), c.lifetime_spent FROM campaigns c "
        "LEFT JOIN daily_metrics m ON m.campaign_id = c.id "
        "WHERE c.id = ANY(CAST(:ids AS uuid[])) GROUP BY c.id, c.lifetime_spent",
        ids=campaigns,
    )
    return {
        r[0]: (int(r[1]), int(r[2]), int(r[3] * 1_000_000), int(r[4] * 1_000_000)) for r in rows
    }


def live_numbers(rds: redis.Redis, days: dict[str, set[date]]) -> dict[str, tuple[int, int, int]]:
    out = {}
    for campaign, on_days in days.items():
        totals = [0, 0, 0]
        for day in on_days:
            keys = [stats_key(k, campaign, day) for k in ("impressions", "clicks", "spend")]
            for i, value in enumerate(rds.mget(keys)):
                totals[i] += int(value or 0)
        out[campaign] = tuple(totals)  # type: ignore[assignment]
    return out


def test_every_event_counts_exactly_once_through_crashes_and_failures(platform, pg, rds):
    rng = random.Random(20261125)
    ads = campaigns_with_ads(CAMPAIGNS)
    impressions, clicks = make_events(ads, rng)
    events = impressions + clicks
    rng.shuffle(events)

    expected: dict[str, tuple[int, int, int, int]] = {}
    per_campaign = Counter()
    for e in events:
        per_campaign[(e.campaign_id, e.event_type)] += 1
    for c in ads:
        spend = sum(i.price_micros for i in impressions if i.campaign_id == c)
        expected[c] = (per_campaign[(c, "impression")], per_campaign[(c, "click")], spend, spend)
    days: dict[str, set[date]] = {c: set() for c in ads}
    for e in events:
        days[e.campaign_id].add(e.day)

    connector = ConnectorProbe()
    admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_BROKERS"]})
    restarts_before = (connector.health() or {}).get("restarts", 0)
    unavailable_before = answered("daily-metrics", "503")
    dead_before = dead_letters(admin)
    storm_conn = connect(PROFILE)
    producer = Producer(
        {
            "bootstrap.servers": os.environ["KAFKA_BROKERS"],
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    failures: list[str] = []

    def delivered(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    # Disruptions on a timetable over the production period (seconds from the start).
    def pg_storm(seconds: float = STORM_SECONDS, interval_s: float = 0.01) -> Storm:
        return Storm(terminate_daily_metrics_backends(storm_conn), seconds, interval_s).start()

    # The kills come first: the connector that lives through the long storm keeps its count
    # of held records to the end.
    plan: list[tuple[float, Callable[[], object]]] = [
        (1.0, pg_storm),
        (3.5, connector.kill),
        (5.0, lambda: Storm(kill_live_counters_clients(rds), STORM_SECONDS, 0.01).start()),
        (6.0, connector.kill),
        (7.5, connector.kill),
        (9.0, lambda: pg_storm(LONG_STORM_SECONDS, 0.005)),
    ]
    storms: list[Storm] = []
    started = time.monotonic()
    pace = PRODUCE_SECONDS / len(events)
    try:
        for n, event in enumerate(events):
            while plan and time.monotonic() - started >= plan[0][0]:
                result = plan.pop(0)[1]()
                if isinstance(result, Storm):
                    storms.append(result)
            producer.produce(
                event.topic, key=event.key, value=event.to_bytes(), on_delivery=delivered
            )
            producer.poll(0)
            lag = started + n * pace - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        for _, step in plan:  # anything the production outran
            result = step()
            if isinstance(result, Storm):
                storms.append(result)
        assert producer.flush(60) == 0
        assert not failures, failures[:5]
        for storm in storms:
            storm.join()
    finally:
        storm_conn.close()
    assert all(not s.errors for s in storms), [s.errors for s in storms]

    drained = wait_for(lambda: committed_everything(admin), DRAIN_TIMEOUT_S, interval_s=1.0)
    assert drained, f"the connector did not commit everything: {connector.health()}"

    assert pipeline_numbers(pg, sorted(ads)) == expected
    assert live_numbers(rds, days) == {c: v[:3] for c, v in expected.items()}
    [[logged]] = pg.run(
        "SELECT count(*) FROM events_log WHERE campaign_id = ANY(CAST(:ids AS uuid[]))",
        ids=sorted(ads),
    )
    assert logged == IMPRESSIONS + CLICKS
    [[total]] = pg.run(
        "SELECT sum(price) FROM events_log WHERE campaign_id = ANY(CAST(:ids AS uuid[]))",
        ids=sorted(ads),
    )
    assert total == to_decimal(sum(i.price_micros for i in impressions))

    # The disruptions were real: three restarts, PostgreSQL and Redis connections killed,
    # daily-metrics calls that failed (503) and were retried, batches held past the retry
    # schedule. Nothing was dead-lettered: the exact counts above leave no room for that.
    assert (connector.health() or {}).get("restarts", 0) >= restarts_before + CONNECTOR_KILLS
    assert sum(s.hits for s in storms[:1] + storms[2:]) > 0, "no PostgreSQL backend was killed"
    assert storms[1].hits > 0, "no live-counters Redis connection was killed"
    assert answered("daily-metrics", "503") > unavailable_before, "daily-metrics never failed"
    assert connector.metric("connector_held_records_total") > 0, "no batch was held"
    assert dead_letters(admin) == dead_before, "records were dead-lettered"
