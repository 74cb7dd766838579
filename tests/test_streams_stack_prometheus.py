"""ISSUE 7's "done when": `gdx up` runs the whole stack, its Prometheus scrapes every process, and
the freshness, rate, lag and exchange-success series exist with sane values — read through
Prometheus's own HTTP API, as the dashboard and the alerts read them. Then Ctrl-C leaves nothing
running."""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from foundation.ports import free_port_block
from tests.support.stack_support import StackProcess, alive, children_of

pytestmark = pytest.mark.kafka
AGENCIES = {"dopa", "dbd", "dol", "dlt"}
SCRAPE_AT_LEAST_S = 45.0
"""Long enough that the 30 s windows hold steady life events only, not the initial load's burst
(the stack is up once the agencies' load is written; the worker applies it over the next ~15 s)."""
SCRAPE_AT_MOST_S = 90.0
P99_30S = "histogram_quantile(0.99, sum by (le) (rate(gdx_freshness_seconds_bucket[30s])))"


def _query(url: str, promql: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _values(url: str, promql: str, by: str | None = None) -> dict[str, float]:
    """Each series' value, keyed by the label `by` (or by its whole label set)."""
    return {
        (series["metric"].get(by, "") if by else json.dumps(series["metric"], sort_keys=True)): float(
            series["value"][1]
        )
        for series in _query(url, promql)
    }


def _problems(url: str) -> list[str]:
    """What is not yet sane, in words; empty when every checked series is."""
    problems = []
    up = _values(url, 'up{job="gdx"}', by="role")
    if set(up) != {"alerts", "monitor", "worker", "publisher", "api"} or min(up.values()) != 1:
        problems.append(f"scrape targets up by role: {up}")
    p99 = _values(url, P99_30S)
    if len(p99) != 1 or not all(math.isfinite(v) and 0 < v <= 60 for v in p99.values()):
        problems.append(f"freshness p99 over 30 s: {p99}")
    # Over 5 m the initial load's burst is still in the window: its events wait behind each other.
    recorded_p99 = _values(url, "agency:gdx_freshness_seconds:p99_5m", by="agency")
    if set(recorded_p99) != AGENCIES or not all(math.isfinite(v) and 0 < v <= 120 for v in recorded_p99.values()):
        problems.append(f"recorded freshness p99 per agency: {recorded_p99}")
    for series in ("gdx_events_published_total", "gdx_events_applied_total"):
        rates = _values(url, f"sum by (agency) (rate({series}[30s]))", by="agency")
        if set(rates) != AGENCIES or min(rates.values()) <= 0:
            problems.append(f"rate of {series} per agency: {rates}")
    lag = _values(url, 'gdx_consumer_lag_offsets{group="gdx-index"}')
    if not lag or not all(0 <= v < 100_000 for v in lag.values()):
        problems.append(f"consumer lag in messages: {len(lag)} series, max {max(lag.values(), default=None)}")
    lag_s = _values(url, 'gdx_consumer_lag_seconds{group="gdx-index"}')
    if not lag_s or not all(0 <= v < 60 for v in lag_s.values()):
        problems.append(f"consumer lag in seconds: {len(lag_s)} series, max {max(lag_s.values(), default=None)}")
    success = _values(url, "agency:gdx_exchange_success:ratio_rate5m", by="agency")
    if set(success) != AGENCIES or not all(0 < v <= 1 for v in success.values()):
        problems.append(f"exchange success per agency: {success}")
    return problems


def test_prometheus_scrapes_the_whole_stack_and_its_series_are_sane(tmp_path: Path) -> None:
    assert shutil.which("prometheus"), "Prometheus is not installed — apt-get install prometheus"
    state = tmp_path / "state"
    prometheus_port = free_port_block(1)
    env = {
        "GDX_STATE_DIR": str(state),
        "GDX_KAFKA_PORT": str(free_port_block(2)),
        "GDX_KAFKA_HEAP": "384m",
        "GDX_PROMETHEUS_PORT": str(prometheus_port),
        "GDX_LOOKUP_PORT": str(free_port_block(1)),
        "GDX_PROMETHEUS_SCRAPE_INTERVAL_S": "1",
        "GDX_ALERTMANAGER_PORT": str(free_port_block(1)),
        "GDX_ALERT_RECEIVER_PORT": str(free_port_block(1)),
        "GDX_LAG_INTERVAL_S": "1",
    }
    stack = StackProcess(env, "--scale", "1000", "--rate", "50")
    try:
        assert stack.wait_for("Press Ctrl-C", timeout=180), f"{stack.output}\n{stack.errors}"
        children = children_of(stack.popen.pid)
        prometheus = stack.row("Prometheus")
        assert prometheus == f"http://127.0.0.1:{prometheus_port}"
        began = time.monotonic()
        problems = _problems(prometheus)
        while (
            problems or time.monotonic() < began + SCRAPE_AT_LEAST_S
        ) and time.monotonic() < began + SCRAPE_AT_MOST_S:
            time.sleep(2)
            problems = _problems(prometheus)
        assert not problems, f"after {time.monotonic() - began:.0f} s of scraping: {problems}"
        with urllib.request.urlopen(f"{prometheus}/api/v1/targets?state=active", timeout=5) as answer:
            scraped = {
                t["labels"].get("role", "-"): t["scrapeUrl"] for t in json.loads(answer.read())["data"]["activeTargets"]
            }
        # The lookup API is up over HTTPS, verified with the project CA; the other processes plain HTTP.
        assert scraped["api"].startswith("https://127.0.0.1:") and scraped["worker"].startswith("http://"), scraped
        print(
            f"\nsane after {time.monotonic() - began:.1f} s of scraping: freshness p99 over 30 s "
            f"{_values(prometheus, P99_30S)}, over 5 m by agency "
            f"{_values(prometheus, 'agency:gdx_freshness_seconds:p99_5m', by='agency')}, applied/s "
            f"{_values(prometheus, 'sum by (agency) (rate(gdx_events_applied_total[30s]))', by='agency')}, "
            f"max lag {max(_values(prometheus, 'gdx_consumer_lag_offsets').values())} messages"
        )
        assert len(children) >= 5, f"broker, Prometheus, lag monitor, worker, agencies: {children}"
        code = stack.stop(signal.SIGINT)
    finally:
        if stack.popen.poll() is None:
            stack.kill_tree()
    assert code == 0, stack.errors
    assert not alive(children), f"left running after Ctrl-C: {alive(children)}\n{stack.output}"
    assert not list((state / "prometheus" / "targets").glob("*.json"))
    assert "stopped: everything the stack started is down" in stack.output
