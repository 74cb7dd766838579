"""The status page's parts without a broker: reading Prometheus (fed at the `Query` seam, and one
real HTTP client against a stand-in server), the index summary on a real SQLite index, and the
rendered page, with Prometheus answering and without."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine

from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.index_summary import summarise
from linkage.status_html import render
from monitoring.status import QUERIES, PrometheusClient, PrometheusUnavailable, Sample, read_agencies
from tests.support.linkage_support import index_event
from tests.support.promql_names import known_names, metric_names
from tests.support.status_support import EXPECTED_INDEX, read_page, seed_index, status_page

NOW_MS = 1_760_000_000_000
AGENCIES = {
    "dopa": "Department of Provincial Administration (civil registry)",
    "dbd": "Department of Business Development (business registry)",
    "dol": "Department of Lands",
    "dlt": "Department of Land Transport",
}


def _sample(value: float | str, **labels: str) -> Sample:
    return {"metric": labels, "value": [NOW_MS / 1000, str(value)]}


ANSWERS: dict[str, list[Sample]] = {
    QUERIES["freshness_p50_s"]: [
        _sample(0.375, agency="dopa"),
        _sample(45, agency="dlt"),
        _sample("NaN", agency="dol"),
    ],
    QUERIES["freshness_p99_s"]: [_sample(0.4975, agency="dopa"), _sample(59.7, agency="dlt")],
    QUERIES["published_per_s"]: [_sample(12.25, agency="dopa"), _sample(0.05, agency="dlt"), _sample(0, agency="dbd")],
    QUERIES["applied_per_s"]: [_sample(12.0, agency="dopa"), _sample(4, agency="dlt"), _sample(1234.5, agency="dbd")],
    QUERIES["success_ratio"]: [_sample(1, agency="dopa"), _sample(0.8, agency="dlt")],
    QUERIES["dead_letters_per_s"]: [
        _sample(1.0, agency="dlt", reason="invalid"),
        _sample(0, agency="dlt", reason="undecodable"),
    ],
}


def answering(promql: str) -> list[Sample]:
    return ANSWERS[promql]


def refusing(promql: str) -> list[Sample]:
    raise PrometheusUnavailable("Connection refused")


def test_every_query_reads_metrics_that_exist() -> None:
    known = known_names()
    assert not {name: sorted(metric_names(q) - known) for name, q in QUERIES.items() if metric_names(q) - known}


def test_the_answers_fold_into_one_row_per_agency() -> None:
    rates = read_agencies(answering, budget_s=2)
    assert set(rates) == {"dopa", "dlt", "dbd"}, "an agency with only NaN has no row"
    assert rates["dopa"].freshness_p50_s == 0.375 and rates["dopa"].published_per_s == 12.25
    assert rates["dlt"].dead_letters_per_s == {"invalid": 1.0, "undecodable": 0.0}
    assert rates["dbd"].freshness_p50_s is None and rates["dbd"].dead_letters_per_s == {}


def test_a_slow_prometheus_is_unavailable_within_the_budget() -> None:
    release = threading.Event()

    def slow(promql: str) -> list[Sample]:
        release.wait(10)
        return []

    began = time.monotonic()
    with pytest.raises(PrometheusUnavailable, match="no answer within 0.3 s"):
        read_agencies(slow, budget_s=0.3)
    release.set()
    assert time.monotonic() - began < 2


def test_one_failing_query_makes_prometheus_unavailable() -> None:
    def partly(promql: str) -> list[Sample]:
        if promql == QUERIES["success_ratio"]:
            raise PrometheusUnavailable("answered HTTP 503")
        return ANSWERS[promql]

    with pytest.raises(PrometheusUnavailable, match="HTTP 503"):
        read_agencies(partly, budget_s=2)


@pytest.mark.parametrize(
    "sample",
    [
        {"value": [NOW_MS / 1000, "1"]},
        {"metric": {"agency": "dopa"}},
        {"metric": {"agency": "dopa"}, "value": "1"},
        {"metric": {"agency": "dopa"}, "value": [NOW_MS / 1000, "many"]},
        {"metric": None, "value": [0, "1"]},
        {"metric": {"agency": 7}, "value": [0, "1"]},
        "not a sample",
    ],
    ids=[
        "no-labels",
        "no-value",
        "value-not-a-pair",
        "value-not-a-number",
        "labels-null",
        "agency-not-text",
        "not-an-object",
    ],
)
def test_a_malformed_answer_is_prometheus_unavailable_on_the_page(engine: Engine, sample: object) -> None:
    page = status_page(
        engine,
        AGENCIES,
        "http://127.0.0.1:9090",
        lambda _promql: [sample],  # type: ignore[list-item]
        clock=lambda: NOW_MS / 1000,
    )
    _rows, paragraphs = read_page(render(page.report()))
    assert "malformed answer" in paragraphs["source"]


class _StandIn(BaseHTTPRequestHandler):
    """Answers /api/v1/query as the test's `behaviour` says: a result, an error, a 503, or silence."""

    behaviour = "ok"

    def do_GET(self) -> None:
        if self.behaviour == "slow":
            time.sleep(1.5)
        if self.behaviour == "http-503":
            self.send_error(503)
            return
        body = (
            {"status": "success", "data": {"resultType": "vector", "result": [_sample(3, agency="dol")]}}
            if self.behaviour == "ok"
            else {"status": "error", "error": "parse error at char 3"}
        )
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the slow case: the client gave up already
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("behaviour", "problem"),
    [
        ("ok", None),
        ("error", "query failed: parse error at char 3"),
        ("http-503", "answered HTTP 503"),
        ("slow", "timed out"),
    ],
)
def test_the_client_says_why_prometheus_gave_no_answer(behaviour: str, problem: str | None) -> None:
    handler = type("Handler", (_StandIn,), {"behaviour": behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = PrometheusClient(f"http://127.0.0.1:{server.server_address[1]}/", timeout_s=0.5)
    try:
        if problem is None:
            assert client.query("up") == [_sample(3, agency="dol")]
        else:
            with pytest.raises(PrometheusUnavailable) as raised:
                client.query("up")
            assert str(raised.value) == problem
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_port_is_connection_refused() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(PrometheusUnavailable, match="^Connection refused$"):
        PrometheusClient(f"http://127.0.0.1:{port}", timeout_s=1).query("up")


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_the_index_summary_counts_live_records_and_the_recent_ones_freshness(engine: Engine) -> None:
    seed_index(engine, NOW_MS)
    IndexStore(engine).apply(
        [dataclasses.replace(index_event("dol.title-deed", version=2, change_type="DELETE"), source_ms=NOW_MS - 7_000)],
        applied_ms=NOW_MS - 5_000,
    )
    summary = summarise(engine, NOW_MS, 300_000, with_freshness=True)
    assert {agency: s.records for agency, s in summary.items()} == {"dopa": 4, "dbd": 2, "dol": 0, "dlt": 2}
    assert summary["dol"].last_applied_ms == NOW_MS - 5_000 and summary["dol"].freshness_p50_s == 2.0
    assert summary["dbd"].recent == 1, "the record applied an hour ago is outside the window"
    assert (summary["dopa"].freshness_p50_s, summary["dopa"].freshness_p99_s) == (2.0, 8.0)
    assert summarise(engine, NOW_MS, 300_000, with_freshness=False)["dopa"].freshness_p50_s is None


def test_without_prometheus_the_page_shows_the_index_and_says_rates_are_unavailable(engine: Engine) -> None:
    seed_index(engine, NOW_MS)
    page = status_page(engine, AGENCIES, "http://127.0.0.1:9090", refusing, clock=lambda: NOW_MS / 1000)
    rows, paragraphs = read_page(render(page.report()))
    assert "Prometheus at http://127.0.0.1:9090 is not reachable (Connection refused)" in paragraphs["source"]
    assert "rates, dead letters and exchange success are unavailable" in paragraphs["source"]
    assert list(rows) == ["dopa", "dbd", "dol", "dlt"]
    for agency, expected in EXPECTED_INDEX.items():
        row = rows[agency]
        assert {column: row[column] for column in expected} == expected, agency
        assert row["agency"] == f"{agency.upper()} {AGENCIES[agency]}"
        assert row["published"] == row["applied"] == row["dead-letters"] == row["success"] == "unavailable"
        assert row["last-applied"].endswith("UTC (30 s ago)")


def test_with_prometheus_the_page_shows_its_freshness_rates_and_errors(engine: Engine) -> None:
    seed_index(engine, NOW_MS)
    page = status_page(engine, AGENCIES, "http://127.0.0.1:9090", answering, clock=lambda: NOW_MS / 1000)
    html = render(page.report())
    rows, paragraphs = read_page(html)
    assert paragraphs["source"].startswith("Freshness, rates and dead letters: Prometheus at http://127.0.0.1:9090")
    assert rows["dopa"] | {"agency": "", "last-applied": ""} == {
        "agency": "",
        "freshness-p50": "0.38 s",
        "freshness-p99": "0.50 s",
        "published": "12.2/s",
        "applied": "12.0/s",
        "dead-letters": "none",
        "success": "100.0%",
        "records": "4",
        "last-applied": "",
    }
    assert rows["dlt"]["freshness-p50"] == "45 s (over the 30 s objective)"
    assert rows["dlt"]["freshness-p99"] == "1 min 0 s (over the 30 s objective)"
    assert (rows["dlt"]["published"], rows["dlt"]["dead-letters"]) == ("<0.1/s", "invalid 1.0/s, undecodable 0/s")
    assert rows["dbd"]["applied"] == "1,234.5/s" and rows["dbd"]["freshness-p50"] == "—"
    assert rows["dol"]["published"] == "—" and rows["dol"]["records"] == "1"
    assert '<td class="dead-letters bad">invalid' in html and '<td class="success bad">80.0%' in html


def test_every_value_is_escaped(engine: Engine) -> None:
    page = status_page(engine, {"dopa": "<script>alert(1)</script> & co"}, "http://x/?a=<b>", refusing)
    html = render(page.report())
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "http://x/?a=&lt;b&gt;" in html


def test_the_report_is_built_at_most_once_per_cache_period(engine: Engine) -> None:
    asked: list[str] = []
    now = [NOW_MS / 1000]

    def counting(promql: str) -> list[Sample]:
        asked.append(promql)
        return []

    page = status_page(engine, AGENCIES, "http://prometheus", counting, cache_s=5, clock=lambda: now[0])
    page.report()
    now[0] += 4.9
    page.report()
    assert len(asked) == len(QUERIES)
    now[0] += 0.1
    page.report()
    assert len(asked) == 2 * len(QUERIES)


def test_an_unreadable_index_is_a_sentence_on_the_page_not_an_error(tmp_path: Path) -> None:
    empty = index_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
    try:
        rows, paragraphs = read_page(render(status_page(empty, AGENCIES, "http://prometheus", answering).report()))
    finally:
        empty.dispose()
    assert paragraphs["index-problem"] == (
        "The linkage index cannot be read (OperationalError): records and last applied change are unavailable."
    )
    assert rows["dopa"]["records"] == "unavailable" and rows["dopa"]["freshness-p50"] == "0.38 s"
