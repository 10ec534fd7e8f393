"""The bid decision in process (index + first ranked candidate + price, no Redis), p50/p99.

At 1k, 10k and 100k active campaigns with mixed targeting (countries, devices, interests, age
ranges, placements; a CPM grid with ties). Each request is timed alone with perf_counter_ns
after a warm-up; the figures are per decision, in microseconds. For comparison the same
requests go through the obvious alternative, a scan of the campaigns sorted by CPM that runs the
eligibility checks until the first match, under two targeting mixes (see WORKLOADS). Target
(docs/specification.md, service levels): p99 < 50 us at 10k campaigns.

Then the whole decision as the bid function makes it with pacing and frequency caps on
(`bench_paced`, 10k campaigns): `auction.decide` with the refusal and pacing memos among the
checks (a tenth of the campaigns held back by pacing), campaigns with even/frontloaded pacing
in several time zones and frequency caps, and the real `RedisBudgetLedger` preparing its
script call (campaign day, pacing limit, frequency key), answered by a stand-in for Redis: the
figure is everything but the Redis round trip.

Run: `make bench` (all benchmarks) or `python -m tests.benchmarks.bench_decision [sizes...]`.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared_layer.bidding.domain.auction import build_index, decide, decide_slots, first_price, rank
from shared_layer.bidding.domain.budget import RefusalMemo
from shared_layer.bidding.domain.pacing import PacingMemo
from shared_layer.bidding.domain.targeting import ELIGIBILITY_CHECKS, daypart_check, is_eligible
from shared_layer.bidding.store.budget_ledger import RedisBudgetLedger
from shared_layer.kernel.models import (
    DEVICE_TYPES,
    Ad,
    BidRequest,
    Campaign,
    Daypart,
    FrequencyCap,
    Slot,
    SlotsRequest,
    SponsorshipGoal,
    TargetingRule,
)

SIZES = (1_000, 10_000, 100_000)
REQUESTS = 20_000
BASELINE_REQUESTS = 2_000
SEED = 20251129

POPULAR_COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "IN", "BR", "JP", "ES")
OTHER_COUNTRIES = tuple(f"{a}{b}" for a in "KLMNOP" for b in "ABCDE")  # 30 smaller markets
INTERESTS = tuple(f"interest-{n}" for n in range(200))
AGE_RANGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65-120", "13-17", "18-120")
PLACEMENTS = tuple(f"placement-{n:05d}" for n in range(5_000))


def _country(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(POPULAR_COUNTRIES)
    return rng.choice(OTHER_COUNTRIES)


# Share of campaigns restricting each rule type. "broad": about one campaign in ten targets
# nothing, so a scan by CPM meets an eligible one early. "selective": nearly every campaign is
# geo-targeted and most also target audience, as on a mature platform.
WORKLOADS: dict[str, dict[str, float]] = {
    "broad": {"country": 0.6, "device": 0.4, "interest": 0.35, "age": 0.3, "placement": 0.1},
    "selective": {"country": 0.95, "device": 0.6, "interest": 0.6, "age": 0.5, "placement": 0.2},
}


def make_campaigns(count: int, rng: random.Random, shares: dict[str, float]) -> list[Campaign]:
    campaigns = []
    for n in range(count):
        campaign_id = f"campaign-{n:06d}"
        rules: list[tuple[str, str]] = []
        if rng.random() < shares["country"]:
            rules += [("country", _country(rng)) for _ in range(rng.randint(1, 3))]
        if rng.random() < shares["device"]:
            rules += [("device_type", d) for d in rng.sample(DEVICE_TYPES, rng.randint(1, 2))]
        if rng.random() < shares["interest"]:
            rules += [("interest", i) for i in rng.sample(INTERESTS, rng.randint(1, 5))]
        if rng.random() < shares["age"]:
            rules += [("age_range", a) for a in rng.sample(AGE_RANGES, rng.randint(1, 2))]
        if rng.random() < shares["placement"]:
            rules += [("placement", p) for p in rng.sample(PLACEMENTS, rng.randint(1, 3))]
        campaigns.append(
            Campaign(
                id=campaign_id,
                advertiser_id=f"advertiser-{n % 500}",
                name=f"Campaign {n}",
                status="active",
                cpm_micros=rng.randrange(500, 20_001) * 1_000,  # 0.50 to 20.00, ties likely
                daily_budget_micros=100_000_000,
                targeting_rules=tuple(TargetingRule(rule_type=t, rule_value=v) for t, v in rules),
                ads=(
                    Ad(
                        id=f"ad-{n:06d}",
                        campaign_id=campaign_id,
                        title="Ad",
                        image_url="https://cdn.example.com/ad.png",
                        redirect_url="https://example.com/offer",
                    ),
                ),
            )
        )
    return campaigns


def make_requests(count: int, rng: random.Random) -> list[BidRequest]:
    requests = []
    for n in range(count):
        attributes: dict[str, object] = {
            "interests": rng.sample(INTERESTS, rng.randint(0, 8)),
        }
        if rng.random() < 0.7:
            attributes["age"] = rng.randint(13, 80)
        requests.append(
            BidRequest(
                user_id=f"user-{n}",
                placement_id=rng.choice(PLACEMENTS),
                country_code=_country(rng) if rng.random() < 0.95 else None,
                device_type=rng.choice(DEVICE_TYPES) if rng.random() < 0.9 else None,
                user_attributes=attributes,
            )
        )
    return requests


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 / 1_000, p99 / 1_000


def _time_each(decide: Callable[[BidRequest], object], requests: Sequence[BidRequest]) -> list[int]:
    for request in requests[:500]:  # warm-up
        decide(request)
    clock = time.perf_counter_ns
    samples = []
    for request in requests:
        start = clock()
        decide(request)
        samples.append(clock() - start)
    return samples


def bench(size: int, workload: str) -> None:
    rng = random.Random(SEED + size)
    started = time.perf_counter()
    campaigns = make_campaigns(size, rng, WORKLOADS[workload])
    built = time.perf_counter()
    index = build_index(campaigns)
    indexed = time.perf_counter()
    requests = make_requests(REQUESTS, rng)

    def decide(request: BidRequest) -> object:
        winner = next(rank(index, request), None)
        return None if winner is None else first_price(winner, request)

    fill = sum(decide(r) is not None for r in requests) / len(requests)
    p50, p99 = _percentiles(_time_each(decide, requests))

    ranked = index.campaigns

    def scan(request: BidRequest) -> object:
        for campaign in ranked:
            if is_eligible(campaign, request):
                return first_price(campaign, request)
        return None

    scan_p50, scan_p99 = _percentiles(_time_each(scan, requests[:BASELINE_REQUESTS]))
    print(
        f"{workload:>9} {size:>7} campaigns: decision p50 {p50:6.1f} us  p99 {p99:6.1f} us"
        f"  | scan p50 {scan_p50:7.1f} us  p99 {scan_p99:7.1f} us"
        f"  | fill {fill:4.0%}, index built in {indexed - built:.2f} s"
        f" (models {built - started:.1f} s)",
        flush=True,
    )


class _AnsweringRedis:
    """Stands in for Redis: the charge script answers CHARGED at once (no network)."""

    def register_script(self, _text: str) -> Callable[..., list[int]]:
        def run(keys: Sequence[str], args: Sequence[Any]) -> list[int]:
            return [0, int(args[0]), int(args[0])]

        return run


PACED_SIZE = 10_000
_ZONES = ("UTC", "America/New_York", "Europe/Paris", "Asia/Tokyo")


def bench_paced(size: int = PACED_SIZE) -> None:
    rng = random.Random(SEED + size + 1)
    campaigns = [
        campaign.model_copy(
            update={
                "pacing": ("asap", "even", "frontloaded")[n % 3],
                "time_zone": _ZONES[n % len(_ZONES)],
                "frequency_cap": FrequencyCap(impressions=3, window_seconds=86_400)
                if n % 2
                else None,
            }
        )
        for n, campaign in enumerate(make_campaigns(size, rng, WORKLOADS["broad"]))
    ]
    index = build_index(campaigns)
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    clock = lambda: now  # noqa: E731
    ledger = RedisBudgetLedger(_AnsweringRedis(), clock)
    refusals, paced = RefusalMemo(clock=clock), PacingMemo(clock=clock)
    for campaign in rng.sample(campaigns, size // 10):  # ahead of their curves
        if campaign.pacing != "asap":
            paced.remember(campaign, campaign.daily_budget_micros)
    checks = (*ELIGIBILITY_CHECKS, refusals.eligible, paced.eligible)
    requests = make_requests(REQUESTS, rng)

    def one(request: BidRequest) -> object:
        return decide(index, request, ledger, checks=checks, on_refused=refusals.remember)

    fill = sum(one(r) is not None for r in requests) / len(requests)
    p50, p99 = _percentiles(_time_each(one, requests))
    print(
        f"{'paced':>9} {size:>7} campaigns: decision p50 {p50:6.1f} us  p99 {p99:6.1f} us"
        f"  | pacing + frequency caps on, charge prepared (no Redis round trip)"
        f"  | fill {fill:4.0%}",
        flush=True,
    )


_SECTIONS = tuple(f"section-{n}" for n in range(20))


def _with_every_feature(campaign: Campaign, n: int, rng: random.Random) -> Campaign:
    """A campaign of the broad mix with decisioning III's fields: tiers (5% sponsorships with a
    daily goal, 1% house), dayparts (30%), key-values (30% any-of, 10% none-of), exclusion
    labels (20%), sized ads."""
    tier = "sponsorship" if n % 20 == 0 else "house" if n % 100 == 1 else "standard"
    width, height = rng.choice(((300, 250), (728, 90), (160, 600)))
    update: dict[str, Any] = {
        "tier": tier,
        "goal": SponsorshipGoal(impressions=10_000) if tier == "sponsorship" else None,
        "pacing": ("asap", "even")[n % 2],
        "time_zone": _ZONES[n % len(_ZONES)],
        "ads": tuple(
            ad.model_copy(update={"width": width, "height": height}) for ad in campaign.ads
        ),
    }
    if rng.random() < 0.3:
        update["daypart"] = Daypart(
            days=("mon", "tue", "wed", "thu", "fri"), hours=tuple(range(8, 20))
        )
    if rng.random() < 0.3:
        update["key_values"] = {"section": tuple(rng.sample(_SECTIONS, 3))}
    if rng.random() < 0.1:
        update["excluded_key_values"] = {"section": (rng.choice(_SECTIONS),)}
    if rng.random() < 0.2:
        update["exclusion_labels"] = (f"label-{n % 30}",)
    return campaign.model_copy(update=update)


def bench_features(size: int = PACED_SIZE) -> str:
    """1-slot and 3-slot decisions at `size` campaigns with every decisioning feature on, next
    to today's decision (the same campaigns and requests without those features: one slot,
    standard tier, no dayparts, key-values, labels or sizes); returns the three p99s."""
    rng = random.Random(SEED + size + 2)
    plain = make_campaigns(size, rng, WORKLOADS["broad"])
    today_index = build_index(plain)
    campaigns = [_with_every_feature(c, n, rng) for n, c in enumerate(plain)]
    index = build_index(campaigns)
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    clock = lambda: now  # noqa: E731
    ledger = RedisBudgetLedger(_AnsweringRedis(), clock)
    refusals, paced = RefusalMemo(clock=clock), PacingMemo(clock=clock)
    checks = (*ELIGIBILITY_CHECKS, daypart_check(clock), refusals.eligible, paced.eligible)
    requests = [
        r.model_copy(update={"key_values": {"section": (rng.choice(_SECTIONS),)}})
        for r in make_requests(REQUESTS // 4, rng)
    ]
    sizes = (("300x250",), ("728x90",), ())
    slot_requests = [
        SlotsRequest(
            user_id=r.user_id,
            country_code=r.country_code,
            device_type=r.device_type,
            user_attributes=r.user_attributes,
            key_values=r.key_values,
            duplicates="advertiser",
            slots=tuple(
                Slot(name=f"s{k}", placement_id=rng.choice(PLACEMENTS), sizes=sizes[k])
                for k in range(3)
            ),
        )
        for r in requests
    ]
    no_record = lambda _request: ("imp", None)  # noqa: E731

    def today(request: BidRequest) -> object:
        return decide(today_index, request, ledger, checks=plain_checks, on_refused=remember)

    def one(request: BidRequest) -> object:
        return decide(index, request, ledger, checks=checks, on_refused=refusals.remember)

    def three(request: Any) -> object:
        return decide_slots(
            index, request, ledger, new_impression=no_record, checks=checks,
            on_refused=refusals.remember,
        )  # fmt: skip

    plain_refusals = RefusalMemo(clock=clock)
    remember = plain_refusals.remember
    plain_checks = (*ELIGIBILITY_CHECKS, plain_refusals.eligible, paced.eligible)
    plain_requests = [r.model_copy(update={"key_values": {}}) for r in requests]
    p99s = []
    for label, run, batch, what in (
        ("today", today, plain_requests, "today's decision: none of them; charge prepared"),
        ("1-slot", one, requests, "tiers, dayparts, key-values, labels, sizes on"),
        ("3-slot", three, slot_requests, "the same, 3 slots at level advertiser"),
    ):
        p50, p99 = _percentiles(_time_each(run, batch))
        p99s.append(p99)
        print(
            f"{label:>9} {size:>7} campaigns: decision p50 {p50:6.1f} us  p99 {p99:6.1f} us"
            f"  | {what} (no Redis)",
            flush=True,
        )
    return (
        f"decision p99 at {size // 1000}k campaigns: today {p99s[0]:.0f} us, every feature on"
        f" 1 slot {p99s[1]:.0f} us, 3 slots {p99s[2]:.0f} us"
    )


def main(argv: Sequence[str] = ()) -> str:
    sizes = [int(arg) for arg in argv] or list(SIZES)
    print(
        f"{REQUESTS} requests per size ({BASELINE_REQUESTS} for the scan), each timed alone;"
        " target: decision p99 < 50 us at 10k (broad = the mixed targeting of record)",
        flush=True,
    )
    for workload in WORKLOADS:
        for size in sizes:
            bench(size, workload)
    bench_paced()
    return bench_features()


if __name__ == "__main__":
    main(sys.argv[1:])
