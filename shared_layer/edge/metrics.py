"""Prometheus metrics of the decisioning path (bid and serve), in the default registry.

Why here and not in each handler: the names, labels and buckets are part of what ops dashboards
and alerts depend on, so they are declared once, in one place. The template serves the default
registry on FUNCTION_METRICS_PORT (8000), so a metric defined here is scraped from every replica
that imports this module (a function that does not use a metric exports it at zero).

Labels are small closed sets (outcomes, reasons), never ids: a label per campaign or user would
grow the time series without bound.

Example::

    from shared_layer.edge import metrics
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
    "SERVE_OUTCOMES",
    "SERVE_REQUESTS",
]

# Sub-millisecond resolution: the decision targets p99 < 50 us, the handler p95 < 5 ms.
_FAST_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip

BID_OUTCOMES: Final = ("bid", "no-candidate", "budget-exhausted", "invalid", "error")
"""bid: a campaign won and was charged; no-candidate: nothing eligible; budget-exhausted: every
eligible campaign's budget refused; invalid: bad input (4xx); error: our fault or Redis (5xx)."""

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

for _outcome in BID_OUTCOMES:  # every series exists from the start, at zero
    BID_DECISIONS.labels(outcome=_outcome)
for _outcome in SERVE_OUTCOMES:
    SERVE_REQUESTS.labels(outcome=_outcome)
