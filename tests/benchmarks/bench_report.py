"""analytics /report through the gateway: p50/p95 of 90-day, all-dimensions reports, 1k campaigns.

Setup, straight into hourly_metrics (the benchmark measures reads, not the pipeline): CAMPAIGNS
paused campaigns of an advertiser made for this run, each with one ad and a row for every hour
of the last DAYS days (today's hours so far included), its placement (5), country (4) and device
type (2) turning with the hour, so that every combination occurs. Then, through the gateway with
the admin token, one request at a time, BENCH_ROUNDS rounds (3 by default) of:

- per campaign: a campaign's report for the DAYS days by day, grouped by campaign, ad,
  placement, country and device type (what one advertiser's report page asks), for SAMPLE
  campaigns;
- whole account: the advertiser's report for the DAYS days in total, grouped by every dimension
  (one statement over CAMPAIGNS x DAYS x 24 rows).

Prints figures, asserts nothing. Everything made is removed afterwards. Runs against the dev
platform (`make bench`); ADS_PROFILE selects another one. Smaller runs: REPORT_BENCH_CAMPAIGNS,
REPORT_BENCH_DAYS, REPORT_BENCH_SAMPLE.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from localplatform import gateway_api, secrets
from localplatform.components.postgres import connect
from localplatform.profile import Profile, current
from tests.benchmarks.bench_analytics import _line, one_at_a_time

CAMPAIGNS = int(os.environ.get("REPORT_BENCH_CAMPAIGNS", "1000"))
DAYS = int(os.environ.get("REPORT_BENCH_DAYS", "90"))
SAMPLE = int(os.environ.get("REPORT_BENCH_SAMPLE", "50"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
ALL_DIMENSIONS = "campaign,ad,placement,country,deviceType"


def plant(profile: Profile, advertiser: str) -> list[str]:
    """The campaigns, their ads and hourly rows; returns the campaign ids."""
    conn = connect(profile, timeout=600)  # millions of rows in one statement
    try:
        rows = conn.run(
            "INSERT INTO campaigns (name, advertiser_id, status, cpm_bid, daily_budget)"
            " SELECT 'report benchmark ' || g, CAST(:a AS uuid), 'paused', 2.5, 1000"
            " FROM generate_series(1, :n) g RETURNING id::text",
            a=advertiser,
            n=CAMPAIGNS,
        )
        conn.run(
            "INSERT INTO hourly_metrics (hour, campaign_id, ad_id, placement_id, country,"
            " device_type, impressions, clicks, spend)"
            " SELECT h, c.id, CAST(md5(c.id::text) AS uuid),"
            "        'bench-p' || (extract(hour FROM h)::int % 5),"
            "        (ARRAY['US', 'GB', 'DE', 'FR'])[1 + (extract(hour FROM h)::int / 5) % 4],"
            "        (ARRAY['mobile', 'desktop'])[1 + extract(hour FROM h)::int % 2],"
            "        40 + (random() * 400)::int, (random() * 8)::int,"
            "        round((random() * 4)::numeric, 6)"
            " FROM campaigns c CROSS JOIN generate_series("
            "   date_trunc('day', now() AT TIME ZONE 'UTC')"
            "   - CAST(:back AS int) * interval '1 day',"
            "   date_trunc('hour', now() AT TIME ZONE 'UTC'), interval '1 hour') h"
            " WHERE c.advertiser_id = CAST(:a AS uuid)",
            a=advertiser,
            back=DAYS - 1,
        )
        conn.run("ANALYZE hourly_metrics")
    finally:
        conn.close()
    return [campaign_id for (campaign_id,) in rows]


def remove(profile: Profile, advertiser: str, ids: list[str]) -> None:
    conn = connect(profile, timeout=600)
    try:  # hourly_metrics has no foreign key: its rows go first, by id
        conn.run("DELETE FROM hourly_metrics WHERE campaign_id = ANY(CAST(:c AS uuid[]))", c=ids)
        conn.run("DELETE FROM campaigns WHERE advertiser_id = CAST(:a AS uuid)", a=advertiser)
    finally:
        conn.close()


def main() -> None:
    profile = current()
    gateway_api.wait_available(profile, "analytics")
    token = secrets.read(profile, "campaigns-admin-token")
    advertiser = str(uuid.uuid4())
    today = datetime.now(UTC).date()
    start = today - timedelta(days=DAYS - 1)
    print(
        f"  {CAMPAIGNS} campaigns x {DAYS} days x 24 hours of hourly_metrics; reports of "
        f"{start} to {today} by {ALL_DIMENSIONS}; {ROUNDS} rounds",
        flush=True,
    )
    ids: list[str] = []
    try:
        started = time.monotonic()
        ids = plant(profile, advertiser)
        print(f"  planted {len(ids)} campaigns in {time.monotonic() - started:.1f} s", flush=True)
        base = f"{profile.gateway_url}/function/analytics/report"
        query = f"startDate={start}&endDate={today}&groupBy={ALL_DIMENSIONS}&timeZone=UTC"
        per_campaign = [f"{base}?{query}&granularity=day&campaignId={i}" for i in ids[:SAMPLE]]
        account = f"{base}?{query}&granularity=total&advertiserId={advertiser}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        for url in (per_campaign[0], account):
            probe = session.get(url, timeout=60)
            print(f"  probe: {probe.status_code}, {len(probe.content)} bytes", flush=True)
        campaign_ms: list[float] = []
        account_ms: list[float] = []
        errors = [0, 0]
        for _ in range(ROUNDS):
            latencies, failed = one_at_a_time(session, per_campaign)
            campaign_ms += latencies
            errors[0] += failed
            latencies, failed = one_at_a_time(session, [account])
            account_ms += latencies
            errors[1] += failed
        print(_line("one campaign, by day", campaign_ms, errors[0]), flush=True)
        print(_line(f"{CAMPAIGNS} campaigns, total", account_ms, errors[1]), flush=True)
    finally:
        remove(profile, advertiser, ids)


if __name__ == "__main__":
    main()
