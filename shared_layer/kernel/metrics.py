"""How every Prometheus metric is declared, and the metrics of every function's requests.

Each feature declares its own metrics in one module, `<feature>/metrics.py` (bidding, openrtb,
pipeline, campaigns, clicks, reporting, export), through `counter`, `gauge`, `histogram` and
`enum` here; the kernel's own (requests per route, background loops) are declared here and in
`kernel.background`. Why one helper: the names, labels and buckets are what dashboards and alerts
depend on, so every series a label set can take is created at zero when the module is imported
(`every=`), and a function that never uses a metric still exports it at zero. The template
serves the default registry on FUNCTION_METRICS_PORT (8000).

Labels are small closed sets (outcomes, reasons), never ids: a label per campaign or user would
grow the time series without bound.

Example::

    BID_DECISIONS = counter(
        "bid_decisions_total", "Bid requests answered, by outcome", ["outcome"], every=BID_OUTCOMES
    )
    BID_DECISIONS.labels("bid").inc()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, TypeVar

from prometheus_client import REGISTRY, Counter, Enum, Gauge, Histogram
from prometheus_client.registry import Collector

__all__ = [
    "FAST_BUCKETS",
    "FUNCTION_ROUTE_REQUESTS",
    "FUNCTION_ROUTE_SECONDS",
    "UNMATCHED_ROUTE",
    "counter",
    "enum",
    "gauge",
    "histogram",
    "observe_request",
    "scraped",
]

LabelValues = str | Sequence[str]
"""One series' label values: a string for a metric with one label, else one value per label."""

_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)

# Sub-millisecond resolution: the decision targets p99 < 50 us, the handler p95 < 5 ms.
FAST_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip


def counter(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    every: Iterable[LabelValues] = (),
) -> Counter:
    """A counter; each of `every` (label values) exists from the start, at zero."""
    return _zeroed(Counter(name, documentation, labels), every)


def gauge(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    every: Iterable[LabelValues] = (),
) -> Gauge:
    """A gauge; each of `every` (label values) exists from the start, at zero."""
    return _zeroed(Gauge(name, documentation, labels), every)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    buckets: Sequence[float],
    every: Iterable[LabelValues] = (),
) -> Histogram:
    """A histogram with explicit buckets (the defaults fit no latency here)."""
    return _zeroed(Histogram(name, documentation, labels, buckets=buckets), every)


def enum(name: str, documentation: str, states: Sequence[str]) -> Enum:
    """A state set: one series per state, 1 for the current one (the first at the start)."""
    return Enum(name, documentation, states=list(states))


def scraped(collector: Collector) -> None:
    """Ask `collector` for its metrics at every scrape (a probe such as `store_up`), instead of
    declaring metrics that requests update."""
    REGISTRY.register(collector)


def _zeroed(metric: _Metric, every: Iterable[LabelValues]) -> _Metric:
    for values in every:
        metric.labels(*((values,) if isinstance(values, str) else values))
    return metric


# Every function's requests, by route template (a closed set per function, never a raw path):
# kernel.http.Router counts each one. The buckets resolve serve's SLO (p95 < 100 ms, p99 < 200 ms).
UNMATCHED_ROUTE: Final = "unmatched"
_ROUTE_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5,
)  # fmt: skip
FUNCTION_ROUTE_REQUESTS = counter(
    "function_route_requests_total",
    "Requests answered by a function's handler, by route template, method and status code",
    ["function", "route", "method", "code"],
)
FUNCTION_ROUTE_SECONDS = histogram(
    "function_route_duration_seconds",
    "Time in a function's handler per request, by route template",
    ["function", "route"],
    buckets=_ROUTE_BUCKETS,
)


def observe_request(function: str, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its time in the handler."""
    FUNCTION_ROUTE_REQUESTS.labels(function, route, method, str(status)).inc()
    FUNCTION_ROUTE_SECONDS.labels(function, route).observe(seconds)
