"""Bidding's metrics: the bid decision (function bid) and serve's call to it (function serve).

Declared once here through `kernel.metrics`; the names and labels are what the dashboards and
alerts read, so they do not change.

Example::

    from shared_layer.bidding import metrics
    metrics.BID_DECISIONS.labels("bid").inc()
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.metrics import FAST_BUCKETS, counter, enum, histogram

__all__ = [
    "BID_CALL_SECONDS",
    "BID_DECISIONS",
    "BID_DECISION_SECONDS",
    "BID_OUTCOMES",
    "BID_SPEND_MICROS",
    "BREAKER_STATE",
    "SERVE_OUTCOMES",
    "SERVE_REQUESTS",
    "deciding",
]

BID_OUTCOMES: Final = (
    "bid", "no-candidate", "budget-exhausted", "below-floor", "late", "invalid", "error",
)  # fmt: skip
"""bid: a campaign won and was charged; no-candidate: nothing eligible; budget-exhausted: every
eligible campaign's budget (or pacing curve, or frequency cap) refused; below-floor: every eligible
bid was below the placement's floor; late: serve's deadline had passed, no auction; invalid: bad
input (4xx); error: our fault or Redis (5xx)."""

BID_DECISIONS = counter(
    "bid_decisions_total", "Bid requests answered, by outcome", ["outcome"], every=BID_OUTCOMES
)
BID_DECISION_SECONDS = histogram(
    "bid_decision_seconds",
    "Time in the auction (ranking and Redis charges) per bid request",
    buckets=FAST_BUCKETS,
)


@contextmanager
def deciding() -> Iterator[None]:
    """Times one bid decision (one or several slots) into BID_DECISION_SECONDS, and counts it
    as invalid or error when it raises; the caller counts the outcome of one that returns."""
    started = time.perf_counter()
    try:
        yield
    except AdServerError as exc:
        BID_DECISIONS.labels("invalid" if exc.status < 500 else "error").inc()
        raise
    finally:
        BID_DECISION_SECONDS.observe(time.perf_counter() - started)


BID_SPEND_MICROS = counter(
    "bid_spend_micros_total",
    "Money charged to budgets by winning bids, in micros (spend per minute on the dashboards)",
)
"""No campaign label (ids are unbounded); per-campaign spend is in PostgreSQL daily_metrics."""

SERVE_OUTCOMES: Final = (
    "filled", "no-bid", "bid-timeout", "bid-error", "circuit-open", "invalid",
)  # fmt: skip
"""filled: an ad was returned; the others are no-fill reasons (X-No-Fill-Reason) or bad input."""

SERVE_REQUESTS = counter(
    "serve_requests_total",
    "Ad requests answered, by outcome (fill or no-fill reason)",
    ["outcome"],
    every=SERVE_OUTCOMES,
)

# serve's call to bid through the gateway: a few ms normally, its timeout (~80 ms) when slow.
BID_CALL_SECONDS = histogram(
    "serve_bid_call_seconds",
    "Time serve waited for bid through the gateway (breaker refusals excluded)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.5),
)
BREAKER_STATE = enum(
    "serve_bid_breaker_state",
    "State of serve's circuit breaker in front of bid (open: no-fill without calling bid)",
    states=("closed", "open", "half-open"),
)
