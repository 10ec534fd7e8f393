"""bid inside the function: handler time per request, Redis charge included, p50/p95/p99.

The real handler (functions/bid/handler.py's `serve_bids`) runs in process against the dev
platform's Redis (`make up`); its campaign snapshot is swapped for a fixed index of 10k
campaigns with mixed targeting (bench_decision's "broad" mix) and budgets that never run out,
so that every request that finds a candidate is charged through the Lua script, as in
production, which also appends the impression event to an outbox (the benchmark's own). Each
`handle(event)` call is timed alone: body parsing, the auction, the charge and its outbox
record (one EVALSHA round trip), the JSON answer. The decision without Redis is shown beside it.
Target (docs/specification.md, service levels): p95 < 5 ms. The budget keys written are deleted
afterwards.

Run: `make bench` or `python -m tests.benchmarks.bench_bid [campaigns]`.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import time
from types import SimpleNamespace

import redis

from localplatform.profile import DEV, REPO_ROOT
from shared_layer.bidding.domain.auction import build_index, first_price, rank
from shared_layer.composition.bidder import BidderSettings, start_bidder
from shared_layer.kernel.clock import utc_now
from shared_layer.kernel.settings import load_settings
from shared_layer.kernel.storage.outbox import outbox_stream
from shared_layer.kernel.storage.shards import SINGLE
from tests.benchmarks.bench_decision import WORKLOADS, make_campaigns, make_requests

CAMPAIGNS = 10_000
REQUESTS = 5_000
WARM_UP = 300
PREFIX = "bench-bid-"
OUTBOX = "bench::bid::outbox"
SEED = 20251130


class _FixedSnapshot:
    def __init__(self, index: object) -> None:
        self.index = index

    def ready(self) -> bool:
        return True


def load_bidder() -> tuple[object, object]:
    """functions/bid/handler.py as a module, and a bidder started over the dev platform."""
    path = REPO_ROOT / "functions" / "bid" / "handler.py"
    spec = importlib.util.spec_from_file_location("bid_handler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    settings = load_settings(BidderSettings, environ=DEV.host_env(), secrets_dir=DEV.secrets_dir)
    runtime = start_bidder(settings, clock=utc_now)
    runtime.snapshot.stop()
    runtime.relay.stop()
    return module, runtime


def _campaigns(count: int) -> list:
    rng = random.Random(SEED)
    renamed = []
    for campaign in make_campaigns(count, rng, WORKLOADS["broad"]):
        new_id = PREFIX + campaign.id
        ads = tuple(ad.model_copy(update={"campaign_id": new_id}) for ad in campaign.ads)
        renamed.append(
            campaign.model_copy(update={"id": new_id, "ads": ads, "daily_budget_micros": 10**14})
        )
    return renamed


def _percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1e6

    return at(0.50), at(0.95), at(0.99)


def main(argv: list[str] | None = None) -> None:
    size = int((argv or sys.argv[1:] or [CAMPAIGNS])[0])
    module, runtime = load_bidder()
    # The charge still appends each impression to an outbox (the XADD is part of the cost),
    # but to one of the benchmark's own that is deleted afterwards, not to the pipeline's.
    runtime.ledger._outbox_prefix = OUTBOX
    index = build_index(_campaigns(size))
    runtime.bidder.snapshot = _FixedSnapshot(index)
    handle = module.serve_bids(runtime.bidder)
    requests = make_requests(REQUESTS + WARM_UP, random.Random(SEED + 1))
    bodies = [r.model_dump_json(exclude_none=True).encode() for r in requests]
    events = [
        SimpleNamespace(method="POST", path="/", body=b, headers={}, query={}) for b in bodies
    ]
    client = redis.Redis.from_url(DEV.host_env()["REDIS_URL"])
    try:
        for event in events[:WARM_UP]:
            handle(event, None)
        samples, statuses = [], {}
        clock = time.perf_counter_ns
        for event in events[WARM_UP:]:
            start = clock()
            response = handle(event, None)
            samples.append(clock() - start)
            statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
        decision_ns = []
        for request in requests[WARM_UP:]:
            start = clock()
            winner = next(rank(index, request, runtime.bidder.checks), None)
            if winner is not None:
                first_price(winner, request)
            decision_ns.append(clock() - start)
    finally:
        keys = list(
            client.scan_iter(match=f"budget::spent::{SINGLE.tag(0)}::{PREFIX}*", count=1000)
        )
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.delete(outbox_stream(SINGLE, 0, OUTBOX))
    p50, p95, p99 = _percentiles(samples)
    d50, d95, d99 = _percentiles(decision_ns)
    print(
        f"  {size} campaigns, {len(samples)} requests (answers {json.dumps(statuses)}):\n"
        f"  handler p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms  (target p95 < 5 ms)\n"
        f"  decision without Redis p50 {d50 * 1000:.1f} us  p95 {d95 * 1000:.1f} us"
        f"  p99 {d99 * 1000:.1f} us",
        flush=True,
    )


if __name__ == "__main__":
    main()
