"""Prometheus metrics of every function's requests and of the decisioning path (bid and serve).

Why here and not in each handler: the names, labels and buckets are part of what ops dashboards
and alerts depend on, so they are declared once, in one place. The template serves the default
registry on FUNCTION_METRICS_PORT (8000), so a metric defined here is scraped from every replica
that imports this module (a function that does not use a metric exports it at zero).

Labels are small closed sets (outcomes, reasons), never ids: a label per campaign or user would
grow the time series without bound.

Example::

    from shared_layer.kernel import metrics
    metrics.BID_DECISIONS.labels(outcome="bid").inc()
    with metrics.BID_DECISION_SECONDS.time():
        decision = decide(index, request, ledger)
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

__all__ = [
    "BID_DECISIONS",
    "BID_DECISION_SECONDS",
    "BID_OUTCOMES",
    "BID_SPEND_MICROS",
    "FUNCTION_ROUTE_REQUESTS",
    "FUNCTION_ROUTE_SECONDS",
    "OPENRTB_NOTICES",
    "OPENRTB_OUTCOMES",
    "OPENRTB_REQUESTS",
    "OPENRTB_SECONDS",
    "SERVE_OUTCOMES",
    "SERVE_REQUESTS",
    "UNMATCHED_ROUTE",
    "observe_request",
]

# Sub-millisecond resolution: the decision targets p99 < 50 us, the handler p95 < 5 ms.
_FAST_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip

BID_OUTCOMES: Final = (
    "bid", "no-candidate", "budget-exhausted", "below-floor", "late", "invalid", "error",
)  # fmt: skip
"""bid: a campaign won and was charged; no-candidate: nothing eligible; budget-exhausted: every
eligible campaign's budget (or pacing curve, or frequency cap) refused; below-floor: every eligible
bid was below the placement's floor; late: serve's deadline had passed, no auction; invalid: bad
input (4xx); error: our fault or Redis (5xx)."""

BID_DECISIONS = Counter("bid_decisions_total", "Bid requests answered, by outcome", ["outcome"])
BID_DECISION_SECONDS = Histogram(
    "bid_decision_seconds",
    "Time in the auction (ranking and Redis charges) per bid request",
    buckets=_FAST_BUCKETS,
)

BID_SPEND_MICROS = Counter(
    "bid_spend_micros_total",
    "Money charged to budgets by winning bids, in micros (spend per minute on the dashboards)",
)
"""No campaign label (ids are unbounded); per-campaign spend is in PostgreSQL daily_metrics."""

SERVE_OUTCOMES: Final = (
    "filled", "no-bid", "bid-timeout", "bid-error", "circuit-open", "invalid",
)  # fmt: skip
"""filled: an ad was returned; the others are no-fill reasons (X-No-Fill-Reason) or bad input."""

SERVE_REQUESTS = Counter(
    "serve_requests_total", "Ad requests answered, by outcome (fill or no-fill reason)", ["outcome"]
)

OPENRTB_OUTCOMES: Final = ("bid", "no-bid", "invalid", "error")
"""openrtb: bid (at least one impression won and was charged), no-bid (204), invalid (4xx),
error (5xx)."""

OPENRTB_REQUESTS = Counter(
    "openrtb_requests_total", "OpenRTB BidRequests answered, by outcome", ["outcome"]
)
OPENRTB_SECONDS = Histogram(
    "openrtb_request_seconds",
    "Time from decoding an OpenRTB BidRequest to its answer (every impression's auction)",
    buckets=_FAST_BUCKETS,
)
OPENRTB_NOTICES = Counter(
    "openrtb_notices_total",
    "Win and billing notices, by kind and outcome (recorded, repeat, refused, error)",
    ["kind", "outcome"],
)

for _outcome in BID_OUTCOMES:  # every series exists from the start, at zero
    BID_DECISIONS.labels(outcome=_outcome)
for _outcome in SERVE_OUTCOMES:
    SERVE_REQUESTS.labels(outcome=_outcome)
for _outcome in OPENRTB_OUTCOMES:
    OPENRTB_REQUESTS.labels(outcome=_outcome)

# Every function's requests, by route template (a closed set per function, never a raw path):
# kernel.http.Router counts each one. The buckets resolve serve's SLO (p95 < 100 ms, p99 < 200 ms).
UNMATCHED_ROUTE: Final = "unmatched"
_ROUTE_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5,
)  # fmt: skip
FUNCTION_ROUTE_REQUESTS = Counter(
    "function_route_requests_total",
    "Requests answered by a function's handler, by route template, method and status code",
    ["function", "route", "method", "code"],
)
FUNCTION_ROUTE_SECONDS = Histogram(
    "function_route_duration_seconds",
    "Time in a function's handler per request, by route template",
    ["function", "route"],
    buckets=_ROUTE_BUCKETS,
)


def observe_request(function: str, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its time in the handler."""
    FUNCTION_ROUTE_REQUESTS.labels(function, route, method, str(status)).inc()
    FUNCTION_ROUTE_SECONDS.labels(function, route).observe(seconds)
