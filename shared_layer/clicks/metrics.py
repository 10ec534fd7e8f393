"""Clicks' metrics (function click): clicks answered, by outcome.

Declared once here through `kernel.metrics`; names and labels are what dashboards and alerts read.
"""

from __future__ import annotations

from shared_layer.clicks.domain.clicks import CLICK_OUTCOMES
from shared_layer.kernel.metrics import counter

__all__ = ["CLICKS"]

CLICKS = counter(
    "click_requests_total", "Clicks answered, by outcome", ["outcome"], every=CLICK_OUTCOMES
)
