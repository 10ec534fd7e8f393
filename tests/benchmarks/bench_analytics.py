"""analytics through the gateway: p50/p95/p99 of 90-day reports, 1k campaigns x 365 days of rows.

Setup, straight into PostgreSQL (the benchmark measures reads, not the pipeline): CAMPAIGNS
paused campaigns of an advertiser made for this run, each with a daily_metrics row for every
one of the last DAYS days (one INSERT ... SELECT over generate_series), and live counters for
today in Redis. Then, through the gateway with the admin token, reports for the last RANGE_DAYS
days (today included: closed days from PostgreSQL or the cache, today from the counters):

- cold: every campaign once, with its analytics cache emptied first (one MGET, one SQL
  statement over RANGE_DAYS - 1 days, one cache write per report);
- warm: every campaign again, every closed day now cached (one MGET, no SQL);
- both one request at a time (the latency of one report, nothing queued behind another);
- warm at a fixed rate: the open-loop generator (loadgen.open_loop) at RATE/s for MEASURE_S,
  measured from each request's due time, with the rate actually achieved.

Target (docs/specification.md, service levels): p95 < 50 ms for 90 days. Everything made is
removed afterwards. Runs against the dev platform (`make bench`); ADS_PROFILE selects another
one. The sizes can be lowered for a smoke run: ANALYTICS_BENCH_CAMPAIGNS, ANALYTICS_BENCH_DAYS,
ANALYTICS_BENCH_RANGE_DAYS, ANALYTICS_BENCH_RATE, ANALYTICS_BENCH_MEASURE_S.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis
import requests

from localplatform import gateway_api, secrets
from localplatform.components.postgres import connect
from localplatform.profile import Profile, current
from shared_layer.pipeline.store.live_counters import stats_key
from shared_layer.reporting.domain.analytics import cache_key
from tests.benchmarks.loadgen import open_loop

CAMPAIGNS = int(os.environ.get("ANALYTICS_BENCH_CAMPAIGNS", "1000"))
DAYS = int(os.environ.get("ANALYTICS_BENCH_DAYS", "365"))
RANGE_DAYS = int(os.environ.get("ANALYTICS_BENCH_RANGE_DAYS", "90"))
RATE = float(os.environ.get("ANALYTICS_BENCH_RATE", "200"))
MEASURE_S = float(os.environ.get("ANALYTICS_BENCH_MEASURE_S", "10"))
LOADGEN_CPU = 1
P95_TARGET_MS = 50.0


def _percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), int(-(-p * len(sorted_ms) // 100))))
    return sorted_ms[rank - 1]


def _line(label: str, latencies_ms: list[float], errors: int) -> str:
    s = sorted(latencies_ms)
    return (
        f"  {label:<22} n {len(s):5d}  p50 {_percentile(s, 50):7.2f} ms  "
        f"p95 {_percentile(s, 95):7.2f} ms  p99 {_percentile(s, 99):7.2f} ms  "
        f"max {s[-1] if s else float('nan'):8.2f} ms  errors {errors}"
    )


def plant(profile: Profile, advertiser: str) -> list[str]:
    """The campaigns and their rows; returns the campaign ids."""
    conn = connect(profile)
    try:
        rows = conn.run(
            "INSERT INTO campaigns (name, advertiser_id, status, cpm_bid, daily_budget)"
            " SELECT 'analytics benchmark ' || g, CAST(:a AS uuid), 'paused', 2.5, 1000"
            " FROM generate_series(1, :n) g RETURNING id::text",
            a=advertiser,
            n=CAMPAIGNS,
        )
        conn.run(
            "INSERT INTO daily_metrics (campaign_id, date, impressions, clicks, spend)"
            " SELECT c.id, d::date, 1000 + (random() * 9000)::int, (random() * 200)::int,"
            "        round((random() * 100)::numeric, 6)"
            " FROM campaigns c"
            " CROSS JOIN generate_series(current_date - CAST(:days AS int), current_date - 1,"
            "                            interval '1 day') d"
            " WHERE c.advertiser_id = CAST(:a AS uuid)",
            a=advertiser,
            days=DAYS,
        )
        conn.run("ANALYZE daily_metrics")
    finally:
        conn.close()
    return [campaign_id for (campaign_id,) in rows]


def remove(profile: Profile, advertiser: str, ids: list[str], r: redis.Redis, today: date) -> None:
    conn = connect(profile)
    try:
        conn.run(
            "DELETE FROM campaigns WHERE advertiser_id = CAST(:a AS uuid)", a=advertiser
        )  # daily_metrics rows go with them (ON DELETE CASCADE)
    finally:
        conn.close()
    clear_cache(r, ids, today)
    keys = [stats_key(k, i, today) for i in ids for k in ("impressions", "clicks", "spend")]
    for start in range(0, len(keys), 10_000):
        r.delete(*keys[start : start + 10_000])


def clear_cache(r: redis.Redis, ids: list[str], today: date) -> None:
    days = [today - timedelta(days=n) for n in range(1, RANGE_DAYS)]
    keys = [cache_key(i, d) for i in ids for d in days]
    for start in range(0, len(keys), 10_000):
        r.delete(*keys[start : start + 10_000])


def one_at_a_time(session: requests.Session, urls: list[str]) -> tuple[list[float], int]:
    latencies, errors = [], 0
    for url in urls:
        started = time.perf_counter()
        try:
            response = session.get(url, timeout=10)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        errors += 0 if ok else 1
    return latencies, errors


def main() -> None:
    profile = current()
    gateway_api.wait_available(profile, "analytics")
    token = secrets.read(profile, "campaigns-admin-token")
    r = redis.Redis.from_url(profile.host_env()["REDIS_URL"], socket_timeout=10)
    advertiser = str(uuid.uuid4())
    today = datetime.now(UTC).date()
    start = today - timedelta(days=RANGE_DAYS - 1)
    print(
        f"  {CAMPAIGNS} campaigns x {DAYS} days of daily_metrics; reports of {RANGE_DAYS} days "
        f"({start} to {today}); target p95 < {P95_TARGET_MS:.0f} ms",
        flush=True,
    )
    ids: list[str] = []
    try:
        started = time.monotonic()
        ids = plant(profile, advertiser)
        print(f"  planted {len(ids) * DAYS} rows in {time.monotonic() - started:.1f} s", flush=True)
        pipe = r.pipeline(transaction=False)
        for n, campaign_id in enumerate(ids):
            pipe.set(stats_key("impressions", campaign_id, today), 500 + n)
            pipe.set(stats_key("clicks", campaign_id, today), n % 20)
            pipe.set(stats_key("spend", campaign_id, today), 1_250_000 + n)
        pipe.execute()
        clear_cache(r, ids, today)
        base = f"{profile.gateway_url}/function/analytics/campaign"
        query = f"startDate={start.isoformat()}&endDate={today.isoformat()}"
        urls = [f"{base}/{campaign_id}?{query}" for campaign_id in ids]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        probe: Any = session.get(urls[0], timeout=10)
        print(f"  probe: {probe.status_code}, {len(probe.content)} bytes", flush=True)
        clear_cache(r, ids[:1], today)
        cold, cold_errors = one_at_a_time(session, urls)
        warm, warm_errors = one_at_a_time(session, urls)
        print(_line("cold (PostgreSQL)", cold, cold_errors), flush=True)
        print(_line("warm (Redis cache)", warm, warm_errors), flush=True)
        result = open_loop(
            urls[0],
            rate=RATE,
            duration_s=MEASURE_S,
            headers={"Authorization": f"Bearer {token}"},
            cpu=LOADGEN_CPU,
        )
        print(f"  warm open loop         {result.line()}", flush=True)
    finally:
        remove(profile, advertiser, ids, r, today)
        r.close()


if __name__ == "__main__":
    main()
