"""Renders infra/grafana/panels.py into Grafana dashboard JSON with grafana-foundation-sdk.

    .venv/bin/python infra/grafana/build_dashboards.py           # write dashboards/*.json
    .venv/bin/python infra/grafana/build_dashboards.py --check   # exit 1 if they drifted
    .venv/bin/python infra/grafana/build_dashboards.py --links http://127.0.0.1:9090
                                                                 # a graph link per query

The committed JSON is what Grafana's provisioning loads (provisioning/dashboards/); `make test`
fails when it differs from what this script makes (tests/unit/test_dashboards.py), so an edit
goes to panels.py and the JSON is regenerated, never edited by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

sys.path.insert(0, str(Path(__file__).resolve().parent))
import panels as spec

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"

# The data sources provisioning/datasources/datasources.yml creates, by uid.
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="ads-prometheus")
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="ads-postgres")

_PANEL_BUILDERS: dict[str, Callable[[], timeseries.Panel | stat.Panel | table.Panel]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "table": table.Panel,
}
_HEIGHT = 8


class _SqlDataquery(cogvariants.Dataquery):
    """A PostgreSQL data source query: the SDK has no builder for that plugin's queries."""

    def __init__(self, ref_id: str, sql: str) -> None:
        self.ref_id = ref_id
        self.sql = sql

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "format": "table",
            "rawQuery": True,
            "rawSql": self.sql,
            "refId": self.ref_id,
        }


class _SqlQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, ref_id: str, sql: str) -> None:
        self._query = _SqlDataquery(ref_id, sql)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _target(ref_id: str, query: spec.Query) -> cogbuilder.Builder[cogvariants.Dataquery]:
    if isinstance(query, spec.SqlQuery):
        return _SqlQueryBuilder(ref_id, query.sql)
    return (
        prometheus.Dataquery()
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .expr(query.expr)
        .legend_format(query.legend or "__auto")
        .range()
    )


def _panel(panel: spec.Panel, panel_id: int, x: int, y: int) -> cogbuilder.Builder:
    sql = any(isinstance(q, spec.SqlQuery) for q in panel.queries)
    built = (
        _PANEL_BUILDERS[panel.kind]()
        .id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(POSTGRES if sql else PROMETHEUS)
        .grid_pos(GridPos(h=_HEIGHT, w=panel.width, x=x, y=y))
        .unit(panel.unit)
    )
    for index, query in enumerate(panel.queries):
        built = built.with_target(_target(chr(ord("A") + index), query))
    return built


def _annotation(annotation: spec.Annotation) -> gd.AnnotationQuery:
    return (
        gd.AnnotationQuery()
        .name(annotation.name)
        .datasource(PROMETHEUS)
        .enable(True)
        .icon_color(annotation.color)
        .expr(annotation.query.expr)
    )


def build(dashboard: spec.Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, as Grafana stores it."""
    built = (
        gd.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(["ads"])
        .timezone("utc")
        .time("now-1h", "now")
        .refresh("10s")
        .editable()
    )
    x = y = 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + _HEIGHT
        built = built.with_panel(_panel(panel, panel_id, x, y))
        x += panel.width
    for annotation in dashboard.annotations:
        built = built.annotation(_annotation(annotation))
    model = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    # The SDK's AnnotationQuery has no field for Prometheus' title template; Grafana reads it
    # from the annotation query's JSON, so it is added to the model here.
    by_name = {a.name: a for a in dashboard.annotations}
    for entry in model.get("annotations", {}).get("list", []):
        if entry.get("name") in by_name:
            entry["titleFormat"] = by_name[entry["name"]].title
            entry["useValueForTime"] = False
    return model


def render(dashboard: spec.Dashboard) -> str:
    return json.dumps(build(dashboard), indent=2, sort_keys=True) + "\n"


def graph_link(prometheus_url: str, expr: str) -> str:
    query = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "1h"})
    return f"{prometheus_url.rstrip('/')}/graph?{query}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON files drifted")
    parser.add_argument("--links", metavar="PROMETHEUS_URL", help="print a graph link per query")
    args = parser.parse_args(argv)
    if args.links:
        for dashboard in spec.DASHBOARDS:
            print(f"# {dashboard.title}")
            for title, query in spec.prom_queries(dashboard):
                label = f" ({query.legend})" if query.legend else ""
                print(f"{title}{label}\n  {graph_link(args.links, query.expr)}")
            for title, sql in spec.sql_queries(dashboard):
                print(f"{title}  [PostgreSQL, not Prometheus]\n  {sql.sql}")
            print()
        return 0
    drifted = []
    OUT_DIR.mkdir(exist_ok=True)
    for dashboard in spec.DASHBOARDS:
        path = OUT_DIR / dashboard.file_name
        text = render(dashboard)
        if args.check:
            if not path.exists() or path.read_text() != text:
                drifted.append(path)
        else:
            path.write_text(text)
    for path in drifted:
        print(f"{path} differs from build_dashboards.py's output: run it and commit the result")
    return 1 if drifted else 0


if __name__ == "__main__":
    raise SystemExit(main())
