"""The event pipeline: events/s from produce to daily_metrics, and event-to-aggregate latency.

Runs against the dev platform (`make up`; ADS_PROFILE selects another): the platform's own
connector, daily-metrics and live-counters, on the platform's `impressions` topic. CAMPAIGNS
paused campaigns are made for the run (on a placement of their own: no auction picks them; their
events still count), then:

1. Throughput, ROUNDS times with fresh campaigns (the median is the figure; the first round
   on a freshly started platform is often slow): EVENTS impressions (odd micro prices) produced
   as fast as one Python producer can, timed from the first produce until PostgreSQL's
   daily_metrics holds all of them (polled every 50 ms), and checked exact (count and spend to
   the micro). Side by side in the
   same run, bare confluent-kafka consumers read the very same records (no HTTP, no function,
   no database): one while they are produced (the end-to-end ceiling with this producer on
   these cores), one afterwards as a backlog (the drain ceiling); both ratios are printed.
2. Latency at LATENCY_RATE events/s for LATENCY_SECONDS, produced on a fixed timetable (open
   loop). Each campaign's events stay on one partition and daily-metrics counts a partition in
   offset order, so a campaign's k-th event is aggregated when its daily_metrics count reaches
   k: a poller reads the counts every 10 ms and measures each event from the moment it was
   due to be produced until its count was visible in PostgreSQL (committed and readable).
   The poll interval bounds the error (+10 ms at most).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime

import msgspec
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from hdrh.histogram import HdrHistogram

from localplatform.components.postgres import password
from localplatform.profile import current
from shared_layer.campaigns.domain.requests import CampaignRequest
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.kernel.money import to_decimal
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import IMPRESSIONS_TOPIC, AdEvent
from shared_layer.pipeline.store.live_counters import stats_key
from tests.benchmarks.cpu import CpuMeter

EVENTS = 200_000
CAMPAIGNS = 100
ROUNDS = int(
    os.environ.get("BENCH_ROUNDS", "3")
)  # the throughput step, each with fresh campaigns; the median is the figure
LATENCY_RATE = 5_000
LATENCY_SECONDS = 20
DRAIN_TIMEOUT_S = 600.0
_COUNTS = """
SELECT CAST(campaign_id AS text), impressions, spend FROM daily_metrics
WHERE campaign_id = ANY(CAST(:ids AS uuid[])) AND date = CAST(:day AS date)
"""


def make_campaigns(db: Database, count: int) -> dict[str, str]:
    """`count` paused campaigns with one ad each; campaign id -> ad id."""
    placement = f"bench-pipeline-{uuid.uuid4().hex[:8]}"
    advertiser = str(uuid.uuid4())
    campaigns = [
        CampaignRequest.model_validate(
            {
                "advertiserId": advertiser,
                "name": f"Pipeline benchmark {n}",
                "cpmBid": 2,
                "dailyBudget": 1_000_000,
                "targetingRules": [{"ruleType": "placement", "ruleValue": placement}],
                "ads": [
                    {
                        "title": "Benchmark ad",
                        "imageUrl": "https://cdn.example.com/bench.png",
                        "redirectUrl": "https://example.com/bench",
                    }
                ],
            }
        ).to_campaign(status="paused")
        for n in range(count)
    ]
    CampaignStore(db).bulk_import(campaigns)
    return {c.id: c.ads[0].id for c in campaigns}


def impressions(ads: dict[str, str], count: int, rng: random.Random) -> list[AdEvent]:
    campaigns = sorted(ads)
    return [
        AdEvent.impression(
            impression_id=str(uuid.uuid4()),
            campaign_id=(c := campaigns[n % len(campaigns)]),
            ad_id=ads[c],
            user_id=f"user-{n % 50_000}",
            placement_id="placement-001",
            bid_cpm_micros=2_000_000,
            price_micros=rng.randint(1_000, 3_000),
            country="US",
            device_type="mobile",
        )
        for n in range(count)
    ]


def counts(db: Database, ids: list[str]) -> dict[str, tuple[int, int]]:
    """campaign -> (impressions today, spend today in micros) from daily_metrics."""
    rows = db.run(_COUNTS, ids=ids, day=datetime.now(UTC).date())
    return {r[0]: (int(r[1]), int(r[2] * 1_000_000)) for r in rows}


def end_offsets(brokers: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "bench-pipeline-probe"})
    partitions = AdminClient({"bootstrap.servers": brokers}).list_topics(
        IMPRESSIONS_TOPIC, timeout=10
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(IMPRESSIONS_TOPIC, p), timeout=10)[1]
        for p in partitions.topics[IMPRESSIONS_TOPIC].partitions
    }
    consumer.close()
    return ends


def producer(brokers: str, linger_ms: int) -> Producer:
    return Producer(
        {"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": linger_ms}
    )


def produce_all(brokers: str, payloads: list[tuple[bytes, bytes]]) -> float:
    """As fast as one idempotent producer can; returns seconds."""
    p = producer(brokers, 20)
    began = time.perf_counter()
    for n, (key, value) in enumerate(payloads):
        while True:
            try:
                p.produce(IMPRESSIONS_TOPIC, key=key, value=value)
                break
            except BufferError:
                p.poll(0.05)
        if n % 1000 == 0:
            p.poll(0)
    p.flush(60)
    return time.perf_counter() - began


def bare_consumer(brokers: str, start: dict[int, int]) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"bench-pipeline-bare-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(IMPRESSIONS_TOPIC, p, o) for p, o in start.items()])
    return consumer


def bare_read(consumer: Consumer, keys: set[bytes], wanted: int) -> float:
    """Read until `wanted` records with one of `keys` were seen (other producers may write
    to the topic too); returns the perf_counter time of the last one."""
    seen = 0
    while seen < wanted:
        batch = consumer.consume(1000, 1.0)
        seen += sum(1 for m in batch if m.error() is None and m.key() in keys)
    return time.perf_counter()


def wait_counted(db: Database, ids: list[str], target: int) -> float:
    """perf_counter time at which daily_metrics held `target` impressions of `ids`."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while time.perf_counter() < deadline:
        if sum(n for n, _ in counts(db, ids).values()) >= target:
            return time.perf_counter()
        # Each look costs PostgreSQL about 2.5 ms (100 rows updated by every batch): every
        # 50 ms it was a fifth of PostgreSQL's CPU in the round; every 100 ms the end is
        # still known to 1% of a round.
        time.sleep(0.1)
    raise SystemExit(f"daily_metrics did not reach {target} within {DRAIN_TIMEOUT_S:.0f}s")


def wait_live(live: redis.Redis, ids: list[str], target: int) -> float:
    """perf_counter time at which the live counters held `target` impressions of `ids`."""
    keys = [stats_key("impressions", c, datetime.now(UTC).date()) for c in ids]
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while time.perf_counter() < deadline:
        if sum(int(v or 0) for v in live.mget(keys)) >= target:
            return time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"live counters did not reach {target} within {DRAIN_TIMEOUT_S:.0f}s")


def throughput(
    db: Database, live: redis.Redis, meter: CpuMeter, brokers: str, ads: dict[str, str]
) -> tuple[float, float]:
    """One round; prints its figures and returns (pipeline, bare consumer e2e) events/s.

    The pipeline is done when both aggregates hold every event: PostgreSQL's daily_metrics
    and Redis' live counters."""
    ids = sorted(ads)
    keys = {c.encode() for c in ids}
    events = impressions(ads, EVENTS, random.Random(7))
    payloads = [(e.key, e.to_bytes()) for e in events]
    start = end_offsets(brokers)
    bare = bare_consumer(brokers, start)
    live_done: list[float] = []
    reader = threading.Thread(target=lambda: live_done.append(bare_read(bare, keys, EVENTS)))
    reader.start()
    cpu_before = meter.sample()
    began = time.perf_counter()
    seconds = produce_all(brokers, payloads)
    done = max(wait_counted(db, ids, EVENTS), wait_live(live, ids, EVENTS))
    cpu_used = meter.sample() - cpu_before
    reader.join(DRAIN_TIMEOUT_S)
    bare.close()
    rate = EVENTS / (done - began)
    bare_live = EVENTS / (live_done[0] - began)
    first = time.perf_counter()  # from the assignment: librdkafka fetches ahead of consume()
    backlog = bare_consumer(brokers, start)
    bare_drain = EVENTS / (bare_read(backlog, keys, EVENTS) - first)
    backlog.close()
    stored = counts(db, ids)
    spend = sum(s for _, s in stored.values())
    exact = sum(n for n, _ in stored.values()) == EVENTS and spend == sum(
        e.price_micros for e in events
    )
    print(f"  produce {EVENTS} events: {EVENTS / seconds:>10,.0f} events/s (one Python producer)")
    print(f"  produce -> daily_metrics and live counters:   {rate:>10,.0f} events/s")
    print(
        f"  produce -> bare consumer, same records, e2e:  {bare_live:>10,.0f} events/s "
        f"(pipeline {rate / bare_live:.2f} of it)"
    )
    print(
        f"  bare consumer draining them as a backlog:     {bare_drain:>10,.0f} events/s "
        f"(pipeline {rate / bare_drain:.2f} of it)"
    )
    print(f"  counts and spend exact: {'yes' if exact else 'NO'} ({to_decimal(spend)} spent)")
    print(f"  {CpuMeter.report(cpu_used, per=EVENTS, unit='event')}")
    print("    (benchmark = the producer plus the bare consumer reading alongside)")
    return rate, bare_live


def latency(db: Database, brokers: str, ads: dict[str, str]) -> None:
    ids = sorted(ads)
    total = LATENCY_RATE * LATENCY_SECONDS
    events = impressions(ads, total, random.Random(11))
    base = {c: n for c, (n, _) in counts(db, ids).items()}
    due: dict[str, list[float]] = {c: [] for c in ids}
    hist = HdrHistogram(1, 60_000_000, 3)  # microseconds
    stop = threading.Event()

    def poll() -> None:
        seen = {c: base.get(c, 0) for c in ids}
        while True:
            finished = stop.is_set()
            now = time.perf_counter()
            for c, (n, _) in counts(db, ids).items():
                while seen[c] < n and seen[c] - base.get(c, 0) < len(due[c]):
                    hist.record_value(max(1, int((now - due[c][seen[c] - base.get(c, 0)]) * 1e6)))
                    seen[c] += 1
            if finished and sum(seen.values()) - sum(base.values()) >= total:
                return
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    p = producer(brokers, 5)
    began = time.perf_counter()
    for n, event in enumerate(events):
        at = began + n / LATENCY_RATE
        wait = at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        stamped = msgspec.structs.replace(event, timestamp=datetime.now(UTC))  # as serve would
        due[event.campaign_id].append(at)
        p.produce(IMPRESSIONS_TOPIC, key=stamped.key, value=stamped.to_bytes())
        p.poll(0)
    achieved = total / (time.perf_counter() - began)
    p.flush(60)
    stop.set()
    poller.join(DRAIN_TIMEOUT_S)
    ms = [hist.get_value_at_percentile(q) / 1000 for q in (50, 95, 99)]
    print(
        f"  event -> daily_metrics latency at {LATENCY_RATE}/s for {LATENCY_SECONDS}s "
        f"(achieved {achieved:,.0f}/s): p50 {ms[0]:.0f} ms  p95 {ms[1]:.0f} ms  "
        f"p99 {ms[2]:.0f} ms  max {hist.get_max_value() / 1000:.0f} ms"
    )


def main() -> str:
    """Prints the figures; returns the summary line `make bench` repeats at its end."""
    profile = current()
    env = profile.host_env()
    brokers = env["KAFKA_BROKERS"]
    db = Database.from_url(env["DATABASE_URL"], password=password(profile), size=2)
    live = redis.Redis.from_url(env["REDIS_URL"])
    meter = CpuMeter(profile)
    made: list[str] = []
    try:
        rounds = []
        for n in range(1, ROUNDS + 1):
            print(f"  round {n} of {ROUNDS}:")
            ads = make_campaigns(db, CAMPAIGNS)
            made += ads
            rounds.append(throughput(db, live, meter, brokers, ads))
        pipeline = statistics.median(r[0] for r in rounds)
        bare = statistics.median(r[1] for r in rounds)
        print(
            f"  median of {ROUNDS}: produce -> daily_metrics {pipeline:,.0f} events/s, "
            f"bare consumer e2e {bare:,.0f} events/s (pipeline {pipeline / bare:.2f} of it)"
        )
        latency(db, brokers, ads)
        return (
            f"pipeline {pipeline:,.0f} events/s end to end (median of {ROUNDS}; target >= 20,000), "
            f"{pipeline / bare:.2f} of a bare consumer on the same records"
        )
    finally:
        db.run(
            "UPDATE campaigns SET status = 'ended' WHERE id = ANY(CAST(:ids AS uuid[]))",
            ids=sorted(made),
        )
        db.close()


if __name__ == "__main__":
    main()
