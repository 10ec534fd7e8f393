"""A throwaway redis-server for the budget ledger tests, and the load those tests put on it.

Until the platform's fixtures serve Redis to integration tests, test_budget_ledger.py starts its
own server here: a free port on loopback, a temporary directory, AOF on and RDB off, so that what
survives a restart survived through the append-only file. Kept out of the test module so that
worker processes (multiprocessing, spawn) import only this small module.
"""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger, ledger_ready_key
from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.models import Ad, Campaign
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.kernel.storage.shards import SINGLE
from tests.support import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def ledger_client(port: int) -> redis.Redis:
    """A client as the ledger wants it: no automatic retries (a charge is not idempotent)."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=5,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def ledger_on(target: int | str, clock: Any) -> RedisBudgetLedger:
    """A ledger on the server at port `target`, or on the Redis (Cluster) URL `target`."""
    if isinstance(target, int):
        return RedisBudgetLedger(ledger_client(target), clock)
    client = connect(target, timeout_s=5, connect_timeout_s=1, retries=0)
    return RedisBudgetLedger(client, clock, shards=key_layout(target))


@dataclass
class RedisServer:
    """One redis-server process on `port` with its data in `directory`; restartable."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start, and make sure the server answering on the port is this one: between
        `free_port` and the bind, another process of a shared machine may take the port, and
        then our redis-server exits while the other answers our PINGs (and is stopped or
        emptied by its owner in the middle of our test). Then: again, on a new port."""
        for _ in range(5):
            if self._start_once(timeout_s):
                return
            self.port = free_port()
        raise RuntimeError(f"redis-server found its port taken five times: see {self.log()}")

    def _start_once(self, timeout_s: float) -> bool:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.exceptions.ConnectionError:  # refused, or LOADING the AOF
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server did not start: see {self.log()}"
                        ) from None
                    time.sleep(0.02)
            if int(client.info("server")["process_id"]) == self.process.pid:
                return True
        finally:
            client.close()
        self.kill()  # another server has the port; ours cannot bind and exits, or is stopped
        return False

    def shutdown(self) -> None:
        """SHUTDOWN as an operator would: Redis flushes the AOF, then exits."""
        client = redis.Redis(host="127.0.0.1", port=self.port)
        client.shutdown()
        client.close()
        assert self.process is not None
        self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> Path:
        return self.directory / "redis.log"


def empty_ledger(server: RedisServer) -> redis.Redis:
    """A ledger client on `server`, started again if a previous test stopped it, emptied and
    marked complete (see test_budget_recovery.py), as each budget test begins."""
    if server.process is None or server.process.poll() is not None:
        server.start()
    connection = ledger_client(server.port)
    connection.flushall()
    connection.set(ledger_ready_key(SINGLE, 0), "test")
    return connection


class FixedClock:
    """An injectable clock that tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class LoadTally:
    """What the load saw, live: acknowledged charges, and calls whose outcome is unknown."""

    charged: Counter[str] = field(default_factory=Counter)
    ambiguous: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, counter: Counter[str], campaign_id: str) -> None:
        with self.lock:
            counter[campaign_id] += 1

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        with self.lock:
            return Counter(self.charged), Counter(self.ambiguous)


def charge_until_refused(
    ledger: RedisBudgetLedger,
    campaigns: list[Campaign],
    tally: LoadTally,
    seed: int,
    start: Any = None,
    give_up_at: float | None = None,
) -> None:
    """Charge one impression at a time to random campaigns until each has refused once.

    Spend only grows within a day, so a campaign that refused once refuses for good. A charge
    that raised an upstream error may or may not have happened: counted as ambiguous, retried.
    """
    rng = random.Random(seed)
    open_campaigns = list(campaigns)
    if start is not None:
        start.wait()
    while open_campaigns:
        if give_up_at is not None and time.monotonic() > give_up_at:
            raise RuntimeError("load did not finish in time")
        campaign = rng.choice(open_campaigns)
        try:
            result = ledger.charge(campaign, campaign.cpm_micros // 1000)
        except (UpstreamUnavailable, UpstreamFailed):
            tally.count(tally.ambiguous, campaign.id)
            time.sleep(0.01)
            continue
        if result.charged:
            tally.count(tally.charged, campaign.id)
        else:
            open_campaigns.remove(campaign)


def process_worker(
    target: int | str,
    campaigns_json: list[str],
    now_iso: str,
    threads: int,
    seed: int,
    start: Any,
    results: Any,
) -> None:
    """One worker process: `threads` threads charging through one ledger and client pool."""
    campaigns = [Campaign.model_validate_json(text) for text in campaigns_json]
    ledger = ledger_on(target, FixedClock(datetime.fromisoformat(now_iso)))
    tally = LoadTally()
    start.wait()  # every process and thread of the test begins at once
    give_up_at = time.monotonic() + 60
    try:
        with ThreadPoolExecutor(threads) as pool:
            runs = [
                pool.submit(
                    charge_until_refused, ledger, campaigns, tally, seed * 100 + n, None, give_up_at
                )
                for n in range(threads)
            ]
            for run in runs:
                run.result()
    except Exception as exc:  # reported to the test, which fails with it
        results.put(("error", repr(exc)))
        return
    charged, ambiguous = tally.snapshot()
    results.put(("ok", (dict(charged), dict(ambiguous))))


def frequency_worker(
    target: int | str, campaign_json: str, now_iso: str, seed: int, start: Any, results: Any
) -> None:
    """One worker process of the frequency cap test: 40 tries for the one hot user, then one
    impression for each of 5 users of its own; reports how many of each were charged.
    `target`: a redis-server's port or a Redis (Cluster) URL (`ledger_on`)."""
    campaign = Campaign.model_validate_json(campaign_json)
    ledger = ledger_on(target, FixedClock(datetime.fromisoformat(now_iso)))
    price = campaign.cpm_micros // 1000
    start.wait()
    try:
        hot = sum(ledger.charge(campaign, price, user_id="hot-user").charged for _ in range(40))
        others = {
            f"user-{seed}-{n}": ledger.charge(campaign, price, user_id=f"user-{seed}-{n}").charged
            for n in range(5)
        }
    except Exception as exc:  # reported to the test, which fails with it
        results.put(("error", repr(exc)))
        return
    results.put(("ok", (hot, others)))


def charge_from_processes(
    target: int | str,
    ledger: RedisBudgetLedger,
    campaigns: list[Campaign],
    now: datetime,
    processes: int = 4,
    threads_each: int = 4,
) -> tuple[Counter[str], Counter[str]]:
    """Charge `campaigns` until each refused, from `processes` worker processes (each with its
    own ledger on `target`) and as many threads of this process through `ledger`, all starting
    at once. Returns (acknowledged charges, ambiguous calls) per campaign id."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + threads_each, timeout=60)
    results = context.Queue()
    as_json = [c.model_dump_json() for c in campaigns]
    workers = [
        context.Process(
            target=process_worker,
            args=(target, as_json, now.isoformat(), threads_each, n, start, results),
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    tally = LoadTally()
    give_up_at = time.monotonic() + 90
    with ThreadPoolExecutor(threads_each) as pool:
        runs = [
            pool.submit(charge_until_refused, ledger, campaigns, tally, 100 + n, start, give_up_at)
            for n in range(threads_each)
        ]
        for run in runs:
            run.result()
    charged, ambiguous = tally.snapshot()
    for _ in workers:
        status, payload = results.get(timeout=90)
        assert status == "ok", payload
        charged.update(payload[0])
        ambiguous.update(payload[1])
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return charged, ambiguous


def ledger_campaign(
    campaign_id: str,
    cpm_micros: int,
    daily_budget: int,
    lifetime_budget: int | None = None,
    **fields: object,
) -> Campaign:
    """An active campaign with one ad, as the ledger tests charge it (`fields`: pacing, caps)."""
    return Campaign(
        id=campaign_id,
        advertiser_id="adv-1",
        name=f"Campaign {campaign_id}",
        status="active",
        cpm_micros=cpm_micros,
        daily_budget_micros=daily_budget,
        lifetime_budget_micros=lifetime_budget,
        ads=(
            Ad(
                id=f"ad-{campaign_id}",
                campaign_id=campaign_id,
                title="Ad",
                image_url="https://cdn.example.com/a.png",
                redirect_url="https://example.com/",
            ),
        ),
        **fields,
    )
