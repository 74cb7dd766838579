"""The status page's content: per agency, freshness, rates and errors from Prometheus, the last
hour of them for the charts, and the index's own records and last applied change — or, without
Prometheus, freshness from the index; and the alerts the receiver holds.

Why it degrades instead of failing: the page is read when something is wrong, which is when
Prometheus may be the thing that is down. A Prometheus or alert receiver that does not answer
within the budget, or an index that cannot be read, becomes a plain sentence on the page, never an
error page. The three sources are asked side by side, so the page waits one budget at most.

Why a cache: the index summary scans `records`, and the lookup API shares that database with the
lookups; however many people keep the page open, the scan runs at most once per `cache_s`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from linkage.index_summary import IndexSummary, summarise_or_problem
from linkage.rebuilt import Rebuilt
from monitoring.alert_receiver import ReceiverUnavailable
from monitoring.status import (
    AgencyRates,
    Points,
    PrometheusUnavailable,
    Query,
    RangeQuery,
    read_agencies,
    read_history,
)

log = logging.getLogger("gdx.status")

WINDOW_S = 300
"""The window of rates and freshness: the recording rules' 5 minutes."""
PROMETHEUS_BUDGET_S = 2.0
"""How long the page waits for Prometheus before it says "unavailable"."""
CACHE_S = 5.0


@dataclass(frozen=True)
class AgencyStatus:
    agency: str
    name: str
    index: IndexSummary | None
    """None when the index could not be read."""
    rates: AgencyRates | None
    """None when Prometheus did not answer; an empty AgencyRates when it holds no series for the agency."""


@dataclass(frozen=True)
class StatusReport:
    generated_ms: int
    prometheus_url: str
    prometheus_problem: str | None
    index_problem: str | None
    agencies: tuple[AgencyStatus, ...]
    history: dict[str, dict[str, Points]] | None
    """Per agency, the charted series of the last hour; None when Prometheus did not answer."""
    alerts_url: str
    alerts: tuple[dict[str, Any], ...] | None
    """What the alert receiver holds, firing first; None when it did not answer (see alerts_problem)."""
    alerts_problem: str | None
    window_s: int = WINDOW_S


class StatusPage:
    """Builds the report for the catalog's agencies, at most once per `cache_s`."""

    def __init__(
        self,
        engine: Engine,
        agencies: dict[str, str],
        prometheus_url: str,
        query: Query,
        *,
        range_query: RangeQuery,
        alerts_url: str,
        alerts: Callable[[], list[dict[str, Any]]],
        budget_s: float = PROMETHEUS_BUDGET_S,
        cache_s: float = CACHE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`alerts` reads the receiver (raising `ReceiverUnavailable`), bounded by its own timeout."""
        self.engine = engine
        self.agencies = agencies
        self.prometheus_url = prometheus_url
        self.query = query
        self.range_query = range_query
        self.alerts_url = alerts_url
        self.alerts = alerts
        self.budget_s = budget_s
        self._report = Rebuilt(self._build, cache_s, clock)
        self._last_problem: str | None = None

    def report(self) -> StatusReport:
        return self._report.get()

    def _build(self, now_ms: int) -> StatusReport:
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="status-source") as pool:
            asked_rates = pool.submit(read_agencies, self.query, self.budget_s)
            asked_history = pool.submit(read_history, self.range_query, self.budget_s, now_ms / 1000)
            asked_alerts = pool.submit(self.alerts)
        rates: dict[str, AgencyRates] | None
        try:
            rates = asked_rates.result()
            problem = None
        except PrometheusUnavailable as exc:
            rates, problem = None, str(exc)
        self._note(problem)
        try:
            history: dict[str, dict[str, Points]] | None = asked_history.result()
        except PrometheusUnavailable:
            history = None
        try:
            alerts: tuple[dict[str, Any], ...] | None = tuple(asked_alerts.result())
            alerts_problem = None
        except ReceiverUnavailable as exc:
            alerts, alerts_problem = None, str(exc)
        index, index_problem = summarise_or_problem(self.engine, now_ms, WINDOW_S * 1000, with_freshness=rates is None)
        return StatusReport(
            generated_ms=now_ms,
            prometheus_url=self.prometheus_url,
            prometheus_problem=problem,
            index_problem=index_problem,
            agencies=tuple(
                AgencyStatus(
                    agency,
                    name,
                    None if index is None else index.get(agency, IndexSummary()),
                    None if rates is None else rates.get(agency, AgencyRates()),
                )
                for agency, name in self.agencies.items()
            ),
            history=history,
            alerts_url=self.alerts_url,
            alerts=alerts,
            alerts_problem=alerts_problem,
        )

    def _note(self, problem: str | None) -> None:
        """Log Prometheus going away and coming back, once each, not on every page view."""
        if problem != self._last_problem:
            if problem is None:
                log.info("status page: Prometheus answers again", extra={"url": self.prometheus_url})
            else:
                log.warning("status page: Prometheus unavailable", extra={"url": self.prometheus_url, "error": problem})
        self._last_problem = problem
