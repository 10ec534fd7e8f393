"""Every dashboard panel and its query: the one place they are written.

`build_dashboards.py` renders these into Grafana dashboard JSON (dashboards/*.json) through
grafana-foundation-sdk; `make dashboard` prints a Prometheus graph link for every query; the e2e
test tests/e2e/test_dashboard_queries.py runs every query against the test platform's
Prometheus (and every SQL query against its PostgreSQL) and fails on an empty one. A query is
plain data here so that all three read the same text.

Labels, as this platform's Prometheus sees them: the gateway's series carry `function_name`
("bid"; `gateway_service_count` says "bid.openfaas-fn", hence the label_replace), the replicas'
series (job `functions`) carry `function_name` and `replica` from the provider's discovery, the
connector's carry `topic` and `function`. No query groups by campaign: campaign ids are not
metric labels (unbounded); per-campaign numbers come from PostgreSQL (`SqlQuery`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class PromQuery:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class SqlQuery:
    """A query for the PostgreSQL data source (today's daily_metrics rows, exact per campaign)."""

    sql: str


Query = PromQuery | SqlQuery


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat", "table"] = "timeseries"
    width: int = 12


@dataclass(frozen=True)
class Annotation:
    name: str
    query: PromQuery
    title: str  # Grafana's titleFormat ({{label}} placeholders)
    color: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    annotations: tuple[Annotation, ...] = field(default=())

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"


def _quantile(q: float, metric: str, by: str, where: str = "", window: str = "1m") -> str:
    selector = f"{metric}_bucket{{{where}}}" if where else f"{metric}_bucket"
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({selector}[{window}])))"


def _quantiles(metric: str, by: str, where: str = "", legend: str = "") -> tuple[PromQuery, ...]:
    return tuple(
        PromQuery(_quantile(q, metric, by, where), f"{legend} p{round(q * 100)}".strip())
        for q in (0.5, 0.95, 0.99)
    )


def _outcomes_per_second(title: str, description: str, counter: str) -> Panel:
    query = PromQuery(f"sum by (outcome) (rate({counter}[1m]))", "{{outcome}}")
    return Panel(title, description, (query,), unit="reqps")


# Shared by two dashboards: written once.
INVOCATIONS_PER_S = PromQuery(
    "sum by (function_name) (rate(gateway_function_invocation_total[1m]))", "{{function_name}}"
)
SERVE_FILL_RATIO = PromQuery("ad:serve_fill:ratio_rate5m", "fill rate")
SPEND_PER_MINUTE = PromQuery("ad:bid_spend:units_per_minute", "spend / min")

PLATFORM_OVERVIEW = Dashboard(
    uid="ads-platform-overview",
    title="Ad server: platform overview",
    description="Traffic, latency, errors, fill, spend and the event pipeline, per function.",
    panels=(
        Panel(
            "Requests per second by function",
            "Invocations through the gateway (every HTTP function and the connector's calls).",
            (INVOCATIONS_PER_S,),
            unit="reqps",
        ),
        Panel(
            "Error ratio by function (5xx share, 5 min)",
            "Share of gateway invocations answered 5xx; the ErrorRatioHigh alert fires above 1%.",
            (PromQuery("function_name:gateway_errors:ratio_rate5m", "{{function_name}}"),),
            unit="percentunit",
        ),
        Panel(
            "Latency through the gateway by function: p50 / p95 / p99",
            "Gateway-measured time per invocation (what a caller waits, minus the network).",
            _quantiles("gateway_functions_seconds", "function_name", legend="{{function_name}}"),
            unit="s",
        ),
        Panel(
            "serve latency against the SLO (p95 < 100 ms, p99 < 200 ms)",
            "The recorded quantiles the ServeLatencySLO alert reads.",
            (
                PromQuery(
                    'function_name:gateway_functions_seconds:p95_rate1m{function_name="serve.openfaas-fn"}',
                    "p95",
                ),
                PromQuery(
                    'function_name:gateway_functions_seconds:p99_rate1m{function_name="serve.openfaas-fn"}',
                    "p99",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Fill rate",
            "serve requests answered with an ad, over all serve requests (5 min).",
            (SERVE_FILL_RATIO,),
            unit="percentunit",
            kind="stat",
            width=6,
        ),
        Panel(
            "Spend per minute",
            "Money charged to budgets by winning bids, in currency units per minute.",
            (SPEND_PER_MINUTE,),
            unit="currencyUSD",
            kind="stat",
            width=6,
        ),
        _outcomes_per_second(
            "serve outcomes per second",
            "filled, or why not: no-bid, bid-timeout, bid-error, circuit-open, invalid.",
            "serve_requests_total",
        ),
        _outcomes_per_second(
            "Bid decisions per second",
            "bid, no-candidate, budget-exhausted, below-floor, late (serve had stopped waiting), "
            "invalid, error.",
            "bid_decisions_total",
        ),
        Panel(
            "Events per second through Kafka",
            "Produced: outbox entries Kafka confirmed; consumed: records the connector read.",
            (
                PromQuery("sum by (topic) (rate(outbox_relayed_total[1m]))", "produced {{topic}}"),
                PromQuery(
                    "sum by (topic) (rate(connector_records_consumed_total[1m]))",
                    "consumed {{topic}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Connector lag by topic",
            "High watermark minus the connector group's committed offset, summed over partitions.",
            (PromQuery("topic:connector_consumer_lag:sum", "{{topic}}"),),
        ),
        Panel(
            "Outbox backlog",
            "Events in the Redis outbox stream not yet confirmed by Kafka.",
            (PromQuery("ad:outbox_backlog:max", "backlog"),),
        ),
        Panel(
            "Aggregation batch time p95",
            "One batch counted in PostgreSQL (daily-metrics) and in Redis (live-counters).",
            (
                PromQuery(_quantile(0.95, "daily_metrics_batch_seconds", "job"), "daily-metrics"),
                PromQuery(
                    _quantile(
                        0.95, "live_counters_batch_seconds", "job", 'function_name="live-counters"'
                    ),
                    "live-counters",
                ),
            ),
            unit="s",
        ),
        Panel(
            "Analytics latency: p50 / p95 / p99",
            "Time in the analytics handler per report (the target is p95 < 50 ms).",
            _quantiles("function_request_duration_seconds", "job", 'function_name="analytics"'),
            unit="s",
        ),
        Panel(
            "Redis and PostgreSQL reachable",
            "store_up from the analytics replicas' probe at scrape time (1 up, 0 down).",
            (PromQuery("min by (store) (store_up)", "{{store}}"),),
        ),
    ),
)

AUTOSCALING = Dashboard(
    uid="ads-autoscaling",
    title="Ad server: autoscaling",
    description="Replicas per function against the load they carry; the autoscaler's decisions.",
    panels=(
        Panel(
            "Replicas per function (gateway)",
            "gateway_service_count: the replicas the gateway sees for each function.",
            (
                PromQuery(
                    "sum by (function_name) (label_replace(gateway_service_count, "
                    '"function_name", "$1", "function_name", "([^.]+).*"))',
                    "{{function_name}}",
                ),
            ),
        ),
        Panel(
            "Invocations per second by function",
            "The load the replicas above carry.",
            (INVOCATIONS_PER_S,),
            unit="reqps",
        ),
        Panel(
            "Ready against desired replicas (provider)",
            "A function whose ready count stays below desired is not keeping up with its scaling.",
            (
                PromQuery(
                    "sum by (function_name) (provider_available_replicas)",
                    "{{function_name}} ready",
                ),
                PromQuery(
                    "sum by (function_name) (provider_desired_replicas)",
                    "{{function_name}} desired",
                ),
            ),
        ),
        Panel(
            "Replicas the autoscaler wants",
            "autoscaler_desired_replicas per function it manages.",
            (
                PromQuery(
                    "max by (function) (autoscaler_desired_replicas)",
                    "{{function}}",
                ),
            ),
        ),
        Panel(
            "In-flight requests per replica",
            "of-watchdog's http_requests_in_flight, one line per replica.",
            (
                PromQuery(
                    "sum by (function_name, replica) (http_requests_in_flight)",
                    "{{replica}}",
                ),
            ),
        ),
        Panel(
            "Requests per second per replica",
            "of-watchdog's http_requests_total: is the load spread evenly over the replicas?",
            (
                PromQuery(
                    "sum by (function_name, replica) (rate(http_requests_total[1m]))",
                    "{{replica}}",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "Latency per function at the replicas: p50 / p95 / p99",
            "of-watchdog's http_request_duration_seconds (the replica's own time, no gateway).",
            tuple(
                PromQuery(q.expr, q.legend)
                for q in _quantiles(
                    "http_request_duration_seconds", "function_name", legend="{{function_name}}"
                )
            ),
            unit="s",
            width=24,
        ),
    ),
    annotations=(
        Annotation(
            "Autoscaler decisions",
            PromQuery(
                "sum by (function, direction, reason) "
                "(increase(autoscaler_decisions_total[1m])) > 0",
            ),
            "{{function}} scaled {{direction}} ({{reason}})",
            "orange",
        ),
        Annotation(
            "Replica count changed",
            PromQuery("sum by (function_name) (changes(gateway_service_count[1m])) > 0"),
            "{{function_name}}: replicas changed",
            "blue",
        ),
    ),
)

BUSINESS = Dashboard(
    uid="ads-business",
    title="Ad server: business",
    description=(
        "Impressions, clicks, CTR and spend. Per campaign from PostgreSQL daily_metrics (today's"
        " row is kept exact by the daily-metrics function from the same events as the live"
        " counters); platform-wide rates from Prometheus."
    ),
    panels=(
        Panel(
            "Today per campaign",
            "daily_metrics for the current UTC day, top 100 by spend.",
            (
                SqlQuery(
                    "SELECT c.name AS campaign, m.campaign_id::text AS campaign_id,"
                    " m.impressions, m.clicks,"
                    " CASE WHEN m.impressions > 0"
                    " THEN round(100.0 * m.clicks / m.impressions, 2) END AS ctr_percent,"
                    " m.spend, c.daily_budget"
                    " FROM daily_metrics m JOIN campaigns c ON c.id = m.campaign_id"
                    " WHERE m.date = (now() AT TIME ZONE 'UTC')::date"
                    " ORDER BY m.spend DESC, m.impressions DESC LIMIT 100"
                ),
            ),
            kind="table",
            width=24,
        ),
        Panel(
            "Today: impressions, clicks, spend",
            "Totals of today's daily_metrics rows over every campaign.",
            (
                SqlQuery(
                    "SELECT coalesce(sum(impressions), 0) AS impressions,"
                    " coalesce(sum(clicks), 0) AS clicks, coalesce(sum(spend), 0) AS spend"
                    " FROM daily_metrics WHERE date = (now() AT TIME ZONE 'UTC')::date"
                ),
            ),
            kind="stat",
        ),
        Panel(
            "Impressions and clicks per second",
            "Impressions: winning bids (each is charged and becomes an impression event);"
            " clicks: clicks counted once.",
            (
                PromQuery('sum(rate(bid_decisions_total{outcome="bid"}[1m]))', "impressions"),
                PromQuery('sum(rate(click_requests_total{outcome="counted"}[1m]))', "clicks"),
            ),
            unit="ops",
        ),
        Panel(
            "CTR over the last hour",
            "Clicks counted over impressions charged, platform-wide.",
            (
                PromQuery(
                    'sum(increase(click_requests_total{outcome="counted"}[1h]))'
                    ' / sum(increase(bid_decisions_total{outcome="bid"}[1h]))',
                    "CTR",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Spend per minute",
            "Money charged to budgets, in currency units per minute.",
            (SPEND_PER_MINUTE,),
            unit="currencyUSD",
        ),
        Panel(
            "Budget-exhausted refusals per second",
            "Bid requests every eligible campaign's budget refused (BudgetExhaustedSpike).",
            (
                PromQuery(
                    'sum(rate(bid_decisions_total{outcome="budget-exhausted"}[1m]))',
                    "budget-exhausted",
                ),
            ),
            unit="reqps",
        ),
        Panel("Fill rate", "As on the platform overview.", (SERVE_FILL_RATIO,), unit="percentunit"),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (PLATFORM_OVERVIEW, AUTOSCALING, BUSINESS)


def prom_queries(dashboard: Dashboard) -> list[tuple[str, PromQuery]]:
    """(panel or annotation title, query) for every Prometheus query of a dashboard."""
    found = [(p.title, q) for p in dashboard.panels for q in p.queries if isinstance(q, PromQuery)]
    return found + [(a.name, a.query) for a in dashboard.annotations]


def sql_queries(dashboard: Dashboard) -> list[tuple[str, SqlQuery]]:
    return [(p.title, q) for p in dashboard.panels for q in p.queries if isinstance(q, SqlQuery)]
