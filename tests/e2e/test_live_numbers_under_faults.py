"""Today's numbers exact in every record after relay crashes, a killed live-counters and Redis
data loss, all under load through the real gateway, bid, the outbox, Kafka and the connector.

Ads are served for campaigns of this module (placements of their own, odd CPMs, so prices are
odd micro amounts) while, in turn:

1. the live-counters replica is SIGKILLed (every process of its namespace) mid-stream: what it
   had not answered is delivered again to its successor;
2. Redis loses its data (FLUSHALL): the budget ledger, the live counters and their watermarks,
   the outbox, the seen ids. bid charges nothing until the ledger is rebuilt from PostgreSQL;
   live-counters goes on counting and rebuilds today from PostgreSQL; analytics reads today
   from PostgreSQL meanwhile (`source: "postgres"`);
3. the outbox relay in bid SIGKILLs its own process between Kafka's acknowledgement and the XDEL
   5 times (the test seam `OUTBOX_RELAY_KILL_AFTER_ACKS` / `OUTBOX_RELAY_KILL_TOKENS`, set on a
   bid deployed for this test only): each time the acknowledged entries stay in the outbox and
   are produced again at new offsets by the next relay's sweeper (after 30 s).

Afterwards, once the outbox is empty and the connector has committed every offset: for every
campaign, live counters == daily_metrics == the ledger's charge == events_log x price (and
impressions likewise), `make reconcile`'s check finds no difference, analytics says `live`,
and the faults were real (5 crashes, events produced again and not counted twice).
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from confluent_kafka.admin import AdminClient
from rich.console import Console

from localplatform import deploy, faas_cli, gateway_api, reconcile, secrets, toolchain
from shared_layer.bidding.store.budget_ledger import ledger_ready_key
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.shards import SINGLE
from shared_layer.pipeline.store.live_counters import READY_KEY
from tests.support import wait_for

from .test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    namespaces,
    redis_client,
    replicas,
    unique_placement,
    wait_replicas,
)
from .test_event_source import Load, kill_replica
from .test_pipeline_exactly_once import committed_everything

REPO_ROOT = Path(__file__).resolve().parents[2]
RELAY_CRASHES = 5
ACKS_BEFORE_CRASH = 20  # a fresh relay acknowledges this many events, then takes a token
CPMS = ("1234.567", "987.654")  # prices 1.234567 and 0.987654: odd micros
DRAIN_TIMEOUT_S = 180.0

_SAMPLE = re.compile(r"^(\w+)(?:\{[^}]*\})? (\S+)$")


def deploy_bid(extra_env: dict[str, str]) -> None:
    """bid again from stack.yml (same image), with `extra_env` on top of its environment; wait
    until its replica is a new one."""
    before = set(replicas("bid"))
    status = gateway_api.function_status(PROFILE, "bid") or {}
    digest = (status.get("annotations") or {}).get(deploy.DIGEST_ANNOTATION, "")
    command = [
        str(toolchain.bin_path(toolchain.FAAS_CLI.name)),
        "deploy",
        "-f",
        str(REPO_ROOT / "stack.yml"),
        "--filter",
        "bid",
        "--gateway",
        PROFILE.gateway_url,
        "--annotation",
        f"{deploy.DIGEST_ANNOTATION}={digest}",
    ]
    for name, value in extra_env.items():
        command += ["--env", f"{name}={value}"]
    done = subprocess.run(command, env=faas_cli.env(PROFILE), cwd=REPO_ROOT, capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert wait_for(lambda: (now := set(replicas("bid"))) and not now & before, 120), (
        "bid was not redeployed"
    )
    wait_replicas("bid", 1, timeout_s=120)


@pytest.fixture(scope="module")
def crash_tokens(platform) -> Iterator[Path]:
    """A bid whose relay crashes once per token file dropped into the directory yielded."""
    tokens = PROFILE.state_dir / "faults" / f"outbox-relay-{uuid.uuid4().hex[:8]}"
    tokens.mkdir(parents=True)
    deploy_bid(
        {
            "OUTBOX_RELAY_KILL_AFTER_ACKS": str(ACKS_BEFORE_CRASH),
            "OUTBOX_RELAY_KILL_TOKENS": str(tokens),
        }
    )
    try:
        yield tokens
    finally:
        for token in tokens.glob("*"):
            token.unlink()
        deploy_bid({})


def replica_metric(function: str, name: str) -> float:
    """A counter summed over a function's replicas, from their own metrics (port 8000)."""
    total = 0.0
    for ip in replicas(function).values():
        for line in requests.get(f"http://{ip}:8000/metrics", timeout=5).text.splitlines():
            match = _SAMPLE.match(line)
            if match and match.group(1) == name:
                total += float(match.group(2))
    return total


def restarts(function: str) -> tuple[int, bool]:
    """(restarts of the function's replicas so far, all of them ready), from the provider."""
    url = f"http://127.0.0.1:{PROFILE.ports.provider_ops}/replicas"
    mine = [r for r in requests.get(url, timeout=5).json() if r["function"] == function]
    return sum(r["restarts"] for r in mine), bool(mine) and all(r["ready"] for r in mine)


def restarted(function: str, since: int) -> bool:
    count, ready = restarts(function)
    return count > since and ready


def analytics_source(campaign_id: str) -> str:
    token = secrets.read(PROFILE, "campaigns-admin-token")
    day = datetime.now(UTC).date().isoformat()
    r = requests.get(
        f"{GATEWAY}/function/analytics/campaign/{campaign_id}",
        params={"startDate": day, "endDate": day},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["source"]


def test_todays_numbers_agree_in_every_record_after_relay_crashes_and_redis_data_loss(
    crash_tokens: Path,
):
    rds = redis_client()
    admin = AdminClient({"bootstrap.servers": PROFILE.host_env()["KAFKA_BROKERS"]})
    maker = Campaigns()
    placements = [unique_placement("live-exact") for _ in CPMS]
    campaigns = [
        maker.create(campaign_body(cpm=cpm, daily="100000", rules=[("placement", placement)]))
        for cpm, placement in zip(CPMS, placements, strict=True)
    ]
    loads = [Load(placement, threads=2, pause_s=0.01) for placement in placements]
    sources_during_rebuild: list[str] = []
    try:
        served = lambda: sum(len(load.impressions) for load in loads)  # noqa: E731
        assert wait_for(lambda: served() >= 60, timeout_s=60)

        # 1. live-counters killed while batches stream in.
        before, _ = restarts("live-counters")
        assert kill_replica(namespaces("live-counters")[0]) > 0
        assert wait_for(lambda: restarted("live-counters", before), 60), "not restarted"

        # 2. Redis loses everything; serving resumes once the ledger is rebuilt.
        rds.flushall()
        source = analytics_source(campaigns[0])
        if not rds.exists(READY_KEY):  # (unless the rebuild was quicker than this request)
            sources_during_rebuild.append(source)
        assert wait_for(lambda: rds.exists(ledger_ready_key(SINGLE, 0)), 120), "ledger not rebuilt"
        after_loss = served()
        assert wait_for(lambda: served() >= after_loss + 60, timeout_s=120), "no fill again"

        # 3. The relay crashes between Kafka's ack and the XDEL, five times.
        resent_before = replica_metric("live-counters", "live_counters_resent_total")
        bid_restarts, _ = restarts("bid")
        for n in range(RELAY_CRASHES):
            (crash_tokens / f"crash-{n}").touch()
            assert wait_for(lambda n=n: restarted("bid", bid_restarts + n), 120), (
                f"the relay did not crash a {n + 1}th time"
            )
        time.sleep(2)
    finally:
        for load in loads:
            load.stop()

    # The crashed relays' acknowledged entries are produced again (sweeper, after 30 s), then
    # everything is counted.
    stream = outbox_stream(SINGLE, 0)
    assert wait_for(lambda: rds.xlen(stream) == 0, DRAIN_TIMEOUT_S, interval_s=1), (
        "the outbox did not drain"
    )
    assert wait_for(lambda: committed_everything(admin), DRAIN_TIMEOUT_S, interval_s=1)
    assert wait_for(lambda: rds.exists(READY_KEY), 60), "live counters not rebuilt"

    report = reconcile.check(PROFILE, only=campaigns)
    reconcile.print_report(report, Console(width=200))  # in the log when it fails
    assert report.differences == []
    assert sorted(f.campaign_id for f in report.campaigns) == sorted(campaigns)
    for figures in report.campaigns:
        spend = figures.spend
        assert spend["live"] == spend["daily_metrics"] == spend["ledger"] == spend["events"] > 0
        shown = figures.impressions
        assert shown["live"] == shown["daily_metrics"] == shown["events"] > 0
        assert analytics_source(figures.campaign_id) == "live"

    # The faults were real: the counters were read from PostgreSQL while lost, five crashes
    # left acknowledged entries behind, and their copies reached live-counters and were not
    # counted (the equalities above leave no room for a double count).
    assert set(sources_during_rebuild) <= {"postgres"}
    assert not list(crash_tokens.glob("*"))
    assert restarts("bid")[0] == bid_restarts + RELAY_CRASHES
    resent = replica_metric("live-counters", "live_counters_resent_total") - resent_before
    assert resent > 0, "no event was produced again by a crashed relay"
