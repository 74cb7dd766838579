"""Each agency's rates, errors and freshness as Prometheus sees them, for the status page.

Why plain Python behind one seam: the page must render whatever Prometheus does — answer, stay
silent, answer slowly, hold no series for an agency — and tests must be able to play each of those
without a Prometheus. `read_agencies` takes a `Query` (PromQL in, the instant vector's samples out)
and `read_history` a `RangeQuery` (the last hour's series, for the charts);
`PrometheusClient.query` and `.query_range` are the production ones. The expressions read the recording rules
(`monitoring/rules/recording.yml`), so the page shows the numbers the alerts and the dashboard use.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

Sample = dict[str, Any]
"""One element of an instant vector: `{"metric": {labels}, "value": [unix time, "string value"]}`."""

Query = Callable[[str], list[Sample]]
"""Runs one instant PromQL query; raises `PrometheusUnavailable` when there is no answer."""

RangeQuery = Callable[[str, float, float, float], list[Sample]]
"""Runs one range query (PromQL, start, end, step in seconds): `{"metric": …, "values": [[t, "v"], …]}`
per series; raises `PrometheusUnavailable` when there is no answer."""

Points = tuple[tuple[float, float], ...]
"""(unix time, value) pairs, oldest first; a gap where Prometheus held no value."""

QUERIES = {
    "freshness_p50_s": "agency:gdx_freshness_seconds:p50_5m",
    "freshness_p99_s": "agency:gdx_freshness_seconds:p99_5m",
    "published_per_s": "sum by (agency) (agency_dataset:gdx_events_published:rate5m)",
    "applied_per_s": "sum by (agency) (agency_dataset:gdx_events_applied:rate5m)",
    "success_ratio": "agency:gdx_exchange_success:ratio_rate5m",
    "dead_letters_per_s": "sum by (agency, reason) (agency_dataset_reason:gdx_events_dead_lettered:rate5m)",
}
"""What the page shows per agency, each over the rules' 5-minute window."""

HISTORY_QUERIES = {
    "freshness_p99_s": QUERIES["freshness_p99_s"],
    "applied_per_s": QUERIES["applied_per_s"],
    "dead_letters_per_s": "sum by (agency) (agency_dataset_reason:gdx_events_dead_lettered:rate5m)"
    " or 0 * sum by (agency) (agency_dataset:gdx_events_applied:rate5m)",
}
"""What the page charts per agency over `HISTORY_S`: the same recorded series as its table; an
agency that applies events but dead-letters none charts zero, not "no data"."""
HISTORY_S = 3600
HISTORY_STEP_S = 30


class PrometheusUnavailable(Exception):
    """Prometheus gave no usable answer (down, slow, or an error); the message says which, in a line."""


@dataclass(frozen=True)
class AgencyRates:
    """One agency's row as Prometheus sees it; None where it holds no series (no traffic in 5 minutes)."""

    freshness_p50_s: float | None = None
    freshness_p99_s: float | None = None
    published_per_s: float | None = None
    applied_per_s: float | None = None
    success_ratio: float | None = None
    dead_letters_per_s: dict[str, float] = field(default_factory=dict)


class PrometheusClient:
    """Instant queries against Prometheus's HTTP API, each bounded by a socket timeout."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, promql: str) -> list[Sample]:
        return self._result("query", {"query": promql})

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Sample]:
        return self._result(
            "query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        )

    def _result(self, endpoint: str, params: dict[str, str]) -> list[Sample]:
        address = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout_s) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusUnavailable(f"answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusUnavailable(getattr(reason, "strerror", None) or str(reason)) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "unknown error") if isinstance(body, dict) else "not a query answer"
            raise PrometheusUnavailable(f"query failed: {error}")
        result = (body.get("data") or {}).get("result")
        if not isinstance(result, list):
            raise PrometheusUnavailable("query failed: the answer holds no result list")
        return result


def _parsed(sample: Sample) -> tuple[dict[str, str], float | None]:
    """The sample's labels and value; NaN (a quantile of nothing) counts as no value. Anything but
    an instant-vector sample is Prometheus giving no usable answer, not a broken page."""
    try:
        labels, (_time, text) = sample["metric"], sample["value"]
        value = float(text)
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise TypeError("labels are not a map of strings")
    except (KeyError, TypeError, ValueError) as exc:
        raise PrometheusUnavailable(f"malformed answer: {type(exc).__name__} in {str(sample)[:80]}") from None
    return labels, None if value != value else value


def _gather(calls: dict[str, Callable[[], list[Sample]]], budget_s: float) -> dict[str, list[Sample]]:
    """Run the calls side by side; all must answer within `budget_s`, so a slow Prometheus costs the
    page at most that long (a call still running afterwards finishes in its own thread)."""
    pool = ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="status-query")
    try:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        done, pending = wait(futures.values(), timeout=budget_s, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        if pending:
            raise PrometheusUnavailable(f"no answer within {budget_s:g} s")
        return {name: future.result() for name, future in futures.items()}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def read_agencies(query: Query, budget_s: float) -> dict[str, AgencyRates]:
    """Every agency Prometheus has series for, with its rates, errors and freshness."""
    results = _gather({name: partial(query, promql) for name, promql in QUERIES.items()}, budget_s)
    values: dict[str, dict[str, Any]] = {}
    for name, samples in results.items():
        for sample in samples:
            labels, number = _parsed(sample)
            agency = labels.get("agency")
            if agency is None or number is None:
                continue
            row = values.setdefault(agency, {"dead_letters_per_s": {}})
            if name == "dead_letters_per_s":
                row[name][labels.get("reason", "unknown")] = number
            else:
                row[name] = number
    return {agency: AgencyRates(**row) for agency, row in values.items()}


def _points(values: object) -> Points:
    """A series' well-formed, finite points; anything else Prometheus might send is left out."""
    points = []
    for pair in values if isinstance(values, list) else ():
        try:
            at, value = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        if value == value and abs(value) != float("inf"):
            points.append((at, value))
    return tuple(points)


def read_history(range_query: RangeQuery, budget_s: float, now_s: float) -> dict[str, dict[str, Points]]:
    """Per agency, per charted series, the points of the last `HISTORY_S`."""
    start = now_s - HISTORY_S
    results = _gather(
        {name: partial(range_query, promql, start, now_s, HISTORY_STEP_S) for name, promql in HISTORY_QUERIES.items()},
        budget_s,
    )
    history: dict[str, dict[str, Points]] = {}
    for name, series in results.items():
        for one in series:
            agency = (one.get("metric") or {}).get("agency") if isinstance(one, dict) else None
            if agency is not None:
                history.setdefault(agency, {})[name] = _points(one.get("values"))
    return history
