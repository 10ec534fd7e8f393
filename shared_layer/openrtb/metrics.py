"""OpenRTB's metrics (function openrtb): BidRequests by outcome and time, win and billing
notices.

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts read.
"""

from __future__ import annotations

from typing import Final

from shared_layer.kernel.metrics import FAST_BUCKETS, counter, histogram

__all__ = ["OPENRTB_NOTICES", "OPENRTB_OUTCOMES", "OPENRTB_REQUESTS", "OPENRTB_SECONDS"]

OPENRTB_OUTCOMES: Final = ("bid", "no-bid", "invalid", "error")
"""bid (at least one impression won and was charged), no-bid (204), invalid (4xx), error (5xx)."""

OPENRTB_REQUESTS = counter(
    "openrtb_requests_total",
    "OpenRTB BidRequests answered, by outcome",
    ["outcome"],
    every=OPENRTB_OUTCOMES,
)
OPENRTB_SECONDS = histogram(
    "openrtb_request_seconds",
    "Time from decoding an OpenRTB BidRequest to its answer (every impression's auction)",
    buckets=FAST_BUCKETS,
)
OPENRTB_NOTICES = counter(
    "openrtb_notices_total",
    "Win and billing notices, by kind and outcome (recorded, repeat, refused, error)",
    ["kind", "outcome"],
)
