"""The Grafana dashboard: every PromQL expression reads metrics that exist, and every concern has a row."""

from __future__ import annotations

import json

from monitoring import metrics
from tests.support.promql_names import DASHBOARD, base_metrics, known_names, metric_names


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _panels() for target in panel["targets"]]


def test_the_name_extractor_sees_metrics_and_nothing_else() -> None:
    expr = (
        'sum by (agency, le) (rate(gdx_freshness_seconds_bucket{agency=~"$agency",le="30.0"}[$__rate_interval]))'
        " / on (agency) group_left () (agency:gdx_x:rate5m > 0) or vector(0) offset 5m and bool up"
    )
    assert metric_names(expr) == {"gdx_freshness_seconds_bucket", "agency:gdx_x:rate5m", "up"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(gdx_typo_total[5m])))") == {"gdx_typo_total"}
    assert metric_names("1e3 * time()") == set()


def test_every_panel_expression_names_existing_metrics() -> None:
    expressions = _expressions()
    assert len(expressions) >= 20
    known = known_names()
    unknown = {title: sorted(metric_names(expr) - known) for title, expr in expressions}
    assert not {title: names for title, names in unknown.items() if names}


def test_the_agency_variable_reads_an_existing_metric() -> None:
    variables = {var["name"]: var for var in _dashboard()["templating"]["list"]}
    query = variables["agency"]["query"]["query"]
    assert query.startswith("label_values(")
    metric = query.removeprefix("label_values(").split(",")[0].strip()
    assert metric in metrics.series_names()


def test_every_metric_is_on_the_dashboard() -> None:
    shown = base_metrics(set().union(*(metric_names(expr) for _, expr in _expressions())))
    families = {name for name in metrics.series_names() if not name.endswith(("_sum", "_count"))}
    missing = {name for name in families if name not in shown and name.replace("_bucket", "_count") not in shown}
    assert not missing, f"metrics not shown on any panel: {sorted(missing)}"


def test_a_row_per_concern() -> None:
    rows = [panel["title"].lower() for panel in _dashboard()["panels"] if panel["type"] == "row"]
    for concern in ("ingest", "dead letter", "freshness", "lag", "pending link", "lookup", "consent", "audit"):
        assert any(concern in row for row in rows), f"no row for {concern}: {rows}"


def test_panels_do_not_overlap_and_use_the_datasource_variable() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in _dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in _panels())
