"""The committed Grafana dashboards: generated, valid for the SDK's schema, queries that parse.

Drift: dashboards/*.json must be exactly what infra/grafana/build_dashboards.py makes from
panels.py. Schema: each file loads into grafana-foundation-sdk's Dashboard model and comes out
unchanged (the model may add its defaults; only the annotation fields it has no place for are
dropped). PromQL: every query is
checked by promtool, as a recording rule in a scratch file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

GRAFANA = Path(__file__).resolve().parents[2] / "infra" / "grafana"
sys.path.insert(0, str(GRAFANA))
import build_dashboards  # noqa: E402
import panels  # noqa: E402

# Prometheus annotation fields Grafana reads that the SDK's AnnotationQuery does not model.
ANNOTATION_EXTRAS = {"titleFormat", "useValueForTime"}


def test_the_committed_json_is_the_generators_output():
    committed = sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json"))
    assert committed == sorted(d.file_name for d in panels.DASHBOARDS)
    assert build_dashboards.main(["--check"]) == 0, "run infra/grafana/build_dashboards.py"


def test_a_changed_panel_is_drift():
    changed = panels.Panel("x", "y", (panels.PromQuery("up"),))
    dashboard = panels.PLATFORM_OVERVIEW
    edited = panels.Dashboard(dashboard.uid, dashboard.title, dashboard.description, (changed,))
    on_disk = (GRAFANA / "dashboards" / dashboard.file_name).read_text()
    assert build_dashboards.render(edited) != on_disk


@pytest.mark.parametrize("dashboard", panels.DASHBOARDS, ids=lambda d: d.uid)
def test_each_dashboard_round_trips_through_the_sdk_model(dashboard):
    register_default_plugins()
    data = json.loads((GRAFANA / "dashboards" / dashboard.file_name).read_text())
    again = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    for entry in data.get("annotations", {}).get("list", []):
        for key in ANNOTATION_EXTRAS:
            entry.pop(key, None)
    assert kept(data, again), "the SDK's model dropped or changed part of the dashboard"
    assert {p["datasource"]["uid"] for p in data["panels"]} <= provisioned_uids()


def kept(original: object, loaded: object) -> bool:
    """Everything in `original` is in `loaded` unchanged (the model may add its defaults)."""
    if isinstance(original, dict):
        return isinstance(loaded, dict) and all(
            key in loaded and kept(value, loaded[key]) for key, value in original.items()
        )
    if isinstance(original, list):
        return (
            isinstance(loaded, list)
            and len(original) == len(loaded)
            and all(kept(a, b) for a, b in zip(original, loaded, strict=True))
        )
    return original == loaded


def test_kept_sees_a_dropped_or_changed_value():
    assert kept({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}], "d": 4})
    assert not kept({"a": [1, {"b": 2}]}, {"a": [1, {"b": 5}]})
    assert not kept({"a": 1, "e": 2}, {"a": 1})


def provisioned_uids() -> set[str]:
    path = GRAFANA / "provisioning" / "datasources" / "datasources.yml"
    return {source["uid"] for source in yaml.safe_load(path.read_text())["datasources"]}


def test_every_panel_has_a_query_and_every_promql_query_parses(tmp_path):
    rules = []
    for dashboard in panels.DASHBOARDS:
        assert all(panel.queries for panel in dashboard.panels)
        for n, (_title, query) in enumerate(panels.prom_queries(dashboard)):
            rules.append(
                {"record": f"check:{dashboard.uid.replace('-', '_')}:{n}", "expr": query.expr}
            )
    scratch = tmp_path / "panel_queries.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run(
        ["promtool", "check", "rules", str(scratch)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_graph_links_carry_the_query():
    link = build_dashboards.graph_link("http://127.0.0.1:9090/", 'sum(rate(x{a="b"}[1m]))')
    assert link.startswith("http://127.0.0.1:9090/graph?g0.expr=sum%28rate%28x%7Ba%3D%22b%22")
