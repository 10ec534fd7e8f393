"""Every dashboard query and every recording rule answers on the test platform's Prometheus.

After a short, bounded load through the gateway (ads served and clicked, a few no-fills,
analytics reports, one scale-out and back of noop, a load step that makes the autoscaler scale
out an autoscaled test function), each Prometheus query of each dashboard in
infra/grafana/panels.py must return at least one series on the real Prometheus that scrapes this
platform, each SQL query of the business dashboard at least one row on its PostgreSQL, and each
recording rule of infra/prometheus/rules/ at least one series. The rule files must be loaded and
healthy.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml

from localplatform import gateway_api, images, secrets, toolchain
from localplatform.components.postgres import connect
from tests.e2e.test_bid_support import (
    GATEWAY,
    PROFILE,
    Campaigns,
    campaign_body,
    scale,
    unique_placement,
)
from tests.scaling import LoadLoop
from tests.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "grafana"))
import panels  # noqa: E402

PROMETHEUS_URL = PROFILE.host_env()["PROMETHEUS_URL"]
RUNTIME_STACK = ROOT / "tests" / "e2e" / "stack.runtime-test.yml"
SCALED = "runtime-test-scaling"  # scaled on requests in flight, 1 to 3 replicas
RULE_FILES = sorted((ROOT / "infra" / "prometheus" / "rules").glob("*.yml"))
SERVED = 120  # ads asked for; a bounded load, sequential enough for 2 shared cores
TRANSIENT_NO_FILL = {"bid-timeout", "bid-error", "circuit-open"}

ALL_PROM = [
    (dashboard.uid, title, query)
    for dashboard in panels.DASHBOARDS
    for title, query in panels.prom_queries(dashboard)
]
SQL = [
    (dashboard.uid, title, query)
    for dashboard in panels.DASHBOARDS
    for title, query in panels.sql_queries(dashboard)
]
RECORDED = [
    rule["record"]
    for path in RULE_FILES
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
    if "record" in rule
]


def query(expr: str, at: float | None = None) -> list[dict]:
    """The instant query's series, now or at the Unix time `at`."""
    params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
    r = requests.get(f"{PROMETHEUS_URL}/api/v1/query", params=params, timeout=10)
    assert r.status_code == 200, f"{expr}: {r.status_code} {r.text}"
    return r.json()["data"]["result"]


def series_within(expr: str, timeout_s: float = 45.0, at: float | None = None) -> list[dict]:
    """The query's series as soon as there is one (rules and rate windows need a few scrapes)."""
    return wait_for(lambda: query(expr, at), timeout_s=timeout_s, interval_s=2.0) or []


@dataclass(frozen=True)
class Load:
    campaign_id: str
    filled: int  # ads served for it (each one an impression charged)
    clicked: int
    scaled_out_at: float = 0.0  # Unix time by which Prometheus had the autoscaler's scale-out


@pytest.fixture(scope="module")
def loaded(platform) -> Iterator[Load]:
    """A campaign of this module's own, its ads served and some clicked; noop scaled 2 and back.

    serve may answer 204 bid-timeout now and then on a busy machine (its bid call has a short
    deadline); such a request is simply not an impression, so the counts are what was filled.
    """
    token = secrets.read(PROFILE, "campaigns-admin-token")
    placement = unique_placement("dashboards")
    campaign_id = Campaigns().create(
        campaign_body(cpm="1200", daily="1000", rules=[("placement", placement)])
    )

    def serve(n: int) -> tuple[int, int]:
        r = requests.get(
            f"{GATEWAY}/function/serve",
            params={"userId": f"dash-{n}", "placementId": placement},
            timeout=10,
        )
        if r.status_code == 204:
            assert r.headers.get("X-No-Fill-Reason") in TRANSIENT_NO_FILL, r.headers
            return 0, 0
        assert r.status_code == 200, (r.status_code, r.text)
        if n % 4:
            return 1, 0
        clicked = requests.get(r.json()["clickTrackingUrl"], allow_redirects=False, timeout=10)
        assert clicked.status_code == 302, clicked.text
        return 1, 1

    def report(_: int) -> None:
        today = datetime.now(UTC).date().isoformat()
        r = requests.get(
            f"{GATEWAY}/function/analytics/campaign/{campaign_id}",
            params={"startDate": today, "endDate": today},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(serve, range(SERVED)))
        list(pool.map(report, range(20)))
    for n in range(10):  # no fill: a placement nothing targets
        requests.get(
            f"{GATEWAY}/function/serve",
            params={"userId": f"dash-{n}", "placementId": unique_placement("nofill")},
            timeout=10,
        )
    scale("noop", 2)  # a replica count that changes: the autoscaling dashboard's annotation
    try:
        gateway_api.wait_available(PROFILE, "noop", minimum=2, timeout_s=60)
        assert series_within('gateway_service_count{function_name=~"noop.*"} == 2')
    finally:
        scale("noop", 1)
    load = Load(campaign_id, sum(f for f, _ in outcomes), sum(c for _, c in outcomes))
    assert load.filled >= SERVED // 10 and load.clicked > 0, load
    with autoscaled(platform) as scaled_out_at:
        yield dataclasses.replace(load, scaled_out_at=scaled_out_at)
    requests.delete(
        f"{GATEWAY}/function/campaigns/{campaign_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@contextmanager
def autoscaled(platform) -> Iterator[float]:
    """The test autoscaler manages only runtime-test-* functions: deploy one, and load it until
    the autoscaler has scaled it out (its decisions and desired replicas then have series).
    Yields the time by which Prometheus had scraped the scale-out."""
    with pytest.MonkeyPatch.context() as mp:  # built here, inside the test namespace, offline
        mp.setenv("UV_OFFLINE", "1")
        images.build_stack(toolchain.bin_path("faas-cli"), RUNTIME_STACK, platform.profile)
    deploy = ("-f", str(RUNTIME_STACK), "--filter", SCALED, "--gateway", platform.gateway)
    platform.faas_cli("deploy", *deploy)
    try:
        gateway_api.wait_available(platform.profile, SCALED)
        up = f'sum(autoscaler_decisions_total{{function="{SCALED}",direction="up"}})'
        # The series start at 0 (so the first decision is an increase): wait until Prometheus
        # has scraped that, then step the load.
        assert series_within(f"{up} == 0"), "the autoscaler does not manage the test function"
        with LoadLoop(f"{GATEWAY}/function/{SCALED}?ms=200", callers=6, max_s=60):
            assert series_within(f"{up} >= 1", timeout_s=50), "the autoscaler did not scale out"
        yield time.time()
    finally:
        platform.faas_cli("remove", *deploy, check=False)


def test_prometheus_loaded_every_rule_file_and_every_rule_is_healthy(loaded):
    groups = requests.get(f"{PROMETHEUS_URL}/api/v1/rules", timeout=10).json()["data"]["groups"]
    files = {Path(g["file"]).name for g in groups}
    assert files == {p.name for p in RULE_FILES}
    bad = [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]
    assert not bad, bad


@pytest.mark.parametrize("record", RECORDED)
def test_each_recording_rule_has_a_series(loaded, record):
    assert series_within(record), f"recording rule {record} has no series"


@pytest.mark.parametrize(
    ("dashboard", "title", "prom"), ALL_PROM, ids=[f"{d}:{t}:{q.legend}" for d, t, q in ALL_PROM]
)
def test_each_panel_query_has_a_series(loaded, dashboard, title, prom):
    # A decision is an event: its annotation is looked at just after it, as a graph shows it.
    at = loaded.scaled_out_at + 5 if "autoscaler_decisions_total" in prom.expr else None
    assert series_within(prom.expr, at=at), f"{dashboard} / {title}: no series for {prom.expr}"


def test_the_load_reached_prometheus(loaded):
    """The counters behind the requests panels count this module's requests (a rate may still
    be 0 here: a series born during the load has no earlier sample to rise from)."""

    def counted() -> dict[str, float] | None:
        found = query("sum by (function_name) (gateway_function_invocation_total)")
        totals = {s["metric"].get("function_name"): float(s["value"][1]) for s in found}
        # The gateway names a function name.namespace, as OpenFaaS does.
        serve, analytics = (
            totals.get("serve.openfaas-fn", 0),
            totals.get("analytics.openfaas-fn", 0),
        )
        enough = serve >= SERVED + 10 and analytics >= 20
        return totals if enough else None

    assert wait_for(counted, timeout_s=30, interval_s=2.0), query(
        "gateway_function_invocation_total"
    )


def test_the_store_probe_sees_redis_and_postgres_up(loaded):
    found = series_within("min by (store) (store_up)")
    assert {s["metric"]["store"]: float(s["value"][1]) for s in found} == {
        "redis": 1.0,
        "postgres": 1.0,
    }


@pytest.mark.parametrize(("dashboard", "title", "sql"), SQL, ids=[t for _, t, _ in SQL])
def test_each_sql_panel_query_returns_rows(loaded, dashboard, title, sql):
    def rows() -> list:
        conn = connect(PROFILE)
        try:
            return conn.run(sql.sql) or []
        finally:
            conn.close()

    # The pipeline counts an impression well within a second; give it a few.
    def with_numbers() -> list:
        return [r for r in rows() if any(isinstance(v, int | Decimal) and v for v in r)]

    found = wait_for(with_numbers, timeout_s=10)
    assert found, f"{dashboard} / {title}: no row with numbers for {sql.sql}"


def test_our_campaign_is_on_the_business_table_with_its_numbers(loaded):
    table = next(q for _, t, q in SQL if t == "Today per campaign")

    def ours() -> list | None:
        conn = connect(PROFILE)
        try:
            rows = [r for r in conn.run(table.sql) if r[1] == loaded.campaign_id]
        finally:
            conn.close()
        # A bid that serve stopped waiting for (204 bid-timeout) may still have been charged:
        # bid's charge is the impression, so impressions lie between filled and asked for.
        counted = rows and loaded.filled <= rows[0][2] <= SERVED and rows[0][3] == loaded.clicked
        return rows if counted else None

    rows = wait_for(ours, timeout_s=10)
    assert rows, f"{loaded} not on the table with its impressions and clicks"
