"""The status page's last hour and its alerts, without a broker: the charts drawn from range
queries fed at the `RangeQuery` seam (gaps, malformed values, no data, Prometheus away), one real
range query against a stand-in Prometheus, and the receiver's alerts (shown, escaped, or away)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine

from linkage.status_html import render
from monitoring.status import HISTORY_QUERIES, HISTORY_S, HISTORY_STEP_S, PrometheusClient, Sample, read_history
from tests.support.promql_names import known_names, metric_names
from tests.support.status_support import no_history, read_charts, read_page, status_page

NOW_S = 1_760_000_000.0
AGENCIES = {"dopa": "Department of Provincial Administration", "dlt": "Department of Land Transport"}


def _series(agency: str, values: list[Any]) -> Sample:
    start = NOW_S - HISTORY_S
    return {"metric": {"agency": agency}, "values": [[start + i * HISTORY_STEP_S, v] for i, v in enumerate(values)]}


def answering(promql: str, start: float, end: float, step: float) -> list[Sample]:
    assert (end - start, step) == (HISTORY_S, HISTORY_STEP_S)
    if promql == HISTORY_QUERIES["freshness_p99_s"]:
        return [_series("dopa", ["0.4"] * 121), _series("dlt", ["12", "NaN", "bad", "13"])]
    if promql == HISTORY_QUERIES["applied_per_s"]:
        return [_series("dopa", ["20"] * 60)]
    return []


def test_every_charted_query_reads_metrics_that_exist() -> None:
    known = known_names()
    assert not {n: sorted(metric_names(q) - known) for n, q in HISTORY_QUERIES.items() if metric_names(q) - known}


def test_each_agency_gets_a_chart_per_series_with_its_points(engine: Engine) -> None:
    page = status_page(engine, AGENCIES, "http://prometheus", lambda q: [], range_query=answering, clock=lambda: NOW_S)
    html = render(page.report())
    charts = read_charts(html)
    assert charts == {
        ("dopa", "freshness_p99_s"): 121,
        ("dopa", "applied_per_s"): 60,
        ("dopa", "dead_letters_per_s"): 0,
        ("dlt", "freshness_p99_s"): 2,
        ("dlt", "applied_per_s"): 0,
        ("dlt", "dead_letters_per_s"): 0,
    }
    assert html.count("<polyline") == 1 + 1 + 2, "a gap of more than two steps splits DLT's line in two"
    assert html.count(">no data</text>") == 3
    assert "now 0.40 s" in html and "max 20.0/s" in html
    assert set(read_page(html)[0]) == set(AGENCIES), "the charts do not disturb the agency table"


def test_without_prometheus_the_page_says_the_hour_cannot_be_charted(engine: Engine) -> None:
    page = status_page(engine, AGENCIES, "http://prometheus", lambda q: [], range_query=no_history)
    html = render(page.report())
    assert 'id="charts-unavailable"' in html and "cannot be charted" in html and "<svg" not in html


def test_malformed_series_are_skipped_not_fatal() -> None:
    def odd(promql: str, start: float, end: float, step: float) -> list[Any]:
        return [
            {"metric": {"agency": "dopa"}, "values": "nope"},
            "junk",
            {"values": [[1, "2"]]},
            {"metric": {"agency": "dlt"}, "values": [[NOW_S, "1"], [None, "x"], ["a"]]},
        ]

    history = read_history(odd, 2, NOW_S)
    assert history == {
        "dopa": {name: () for name in HISTORY_QUERIES},
        "dlt": {name: ((NOW_S, 1.0),) for name in HISTORY_QUERIES},
    }


def test_a_real_range_query_against_a_stand_in_prometheus() -> None:
    asked: list[str] = []

    class StandIn(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(
                {"status": "success", "data": {"resultType": "matrix", "result": [_series("dol", ["3"])]}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = PrometheusClient(f"http://127.0.0.1:{server.server_address[1]}", 2)
        history = read_history(client.query_range, 2, NOW_S)
    finally:
        server.shutdown()
    assert history["dol"]["applied_per_s"] == ((NOW_S - HISTORY_S, 3.0),)
    assert all(path.startswith("/api/v1/query_range?") and "step=30" in path for path in asked)


ALERTS = [
    {
        "status": "firing",
        "labels": {"alertname": "DeadLetterRateHigh", "severity": "ticket", "agency": "dlt", "dataset": "vehicle"},
        "annotations": {"summary": "dlt/vehicle: 5% <b>dead</b>-lettered"},
        "starts_at": "2025-10-09T08:50:00Z",
        "ends_at": "",
        "received_ms": int(NOW_S * 1000) - 60_000,
        "fingerprint": "a",
        "notifications": [],
    },
    {
        "status": "resolved",
        "labels": {"alertname": "AgencySilent", "severity": "ticket", "agency": "dopa"},
        "annotations": {},
        "starts_at": "2025-10-09T08:40:00Z",
        "ends_at": "",
        "received_ms": int(NOW_S * 1000) - 600_000,
        "fingerprint": "b",
        "notifications": [],
    },
]


def test_the_delivered_alerts_are_listed_firing_first_and_escaped(engine: Engine) -> None:
    page = status_page(engine, AGENCIES, "http://prometheus", lambda q: [], alerts=lambda: ALERTS, clock=lambda: NOW_S)
    html = render(page.report())
    table = html[html.index('<table id="alerts">') :]
    assert table.index("DeadLetterRateHigh") < table.index("AgencySilent")
    assert '<tr class="firing"><td class="alert-status">firing</td><td>ticket</td>' in table
    assert "dlt/vehicle" in table and "(1 min 0 s ago)" in table
    assert "&lt;b&gt;dead&lt;/b&gt;" in table and "<b>dead</b>" not in table


def test_no_alert_and_an_absent_receiver_are_sentences(engine: Engine) -> None:
    quiet = render(status_page(engine, AGENCIES, "http://prometheus", lambda q: [], alerts=lambda: []).report())
    assert 'id="alerts-none"' in quiet and "No alert has been delivered" in quiet
    away = render(status_page(engine, AGENCIES, "http://prometheus", lambda q: []).report())
    assert 'id="alerts-unavailable"' in away and "is not reachable (Connection refused)" in away
