"""The platform's own connector, as `make up` runs it: health, metrics, restarts after a crash.

`make up` starts the connector under its supervisor (components/connector.py); the recorded pid
is the supervisor's. A SIGKILLed connector process is started again by the supervisor without
anyone running `make up`, and the component's pid does not change.
"""

from __future__ import annotations

import os
import signal

import requests

from localplatform.components.connector import Connector
from tests.support import wait_for


def health(connector: Connector) -> dict | None:
    try:
        r = requests.get(f"{connector.address()}/healthz", timeout=2)
    except requests.RequestException:
        return None
    return r.json() if r.status_code == 200 else None


def test_the_platform_connector_is_healthy_and_exports_its_metrics(platform):
    connector = Connector(platform.profile)
    assert connector.running() and connector.healthy()
    report = health(connector)
    assert report and report["status"] == "ok" and report["gateway"] == "ok", report
    text = requests.get(f"{connector.address()}/metrics", timeout=5).text
    for name in (
        "connector_records_consumed_total",
        "connector_invocations_total",
        "connector_invocation_failures_total",
        "connector_retries_total",
        "connector_dead_lettered_total",
        "connector_invocation_duration_seconds",
        "connector_consumer_lag",
        "connector_assigned_partitions",
        "connector_subscribed_functions",
    ):
        assert f"# TYPE {name} " in text, name
    # impressions and clicks, 12 partitions each, all assigned to the one connector.
    assert "connector_assigned_partitions 24.0" in text
    assert requests.get(f"{connector.address()}/nothing-here", timeout=5).status_code == 404


def test_a_killed_connector_process_is_restarted_by_its_supervisor(platform):
    connector = Connector(platform.profile)
    supervisor = connector.pid()
    before = health(connector)
    assert supervisor and before, "the platform connector is not up"
    child = before["pid"]
    assert child != supervisor
    os.kill(child, signal.SIGKILL)
    after = wait_for(lambda: (h := health(connector)) and h["pid"] != child and h, timeout_s=20)
    assert after, "the connector did not come back after SIGKILL"
    assert after["restarts"] == before["restarts"] + 1
    assert connector.pid() == supervisor  # the same supervisor: nobody ran `make up`
    text = requests.get(f"{connector.address()}/metrics", timeout=5).text
    assert f"connector_supervisor_restarts {after['restarts']:.1f}" in text
    status = platform.localplatform("status")
    assert "connector" in status.stdout and status.returncode == 0, status.stdout
