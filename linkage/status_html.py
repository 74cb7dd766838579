"""The status report as one self-contained HTML page for a person: a table with a row per agency,
the last hour of each agency charted, and the alerts delivered.

Why server-rendered and script-free: it must show the same thing in any browser, a terminal
browser, or a headless one in a test, and it must load while the rest of the stack is in trouble.
Every value is escaped; no value is personal data — the page holds only aggregates.
"""

from __future__ import annotations

import math
from html import escape

from foundation.moments import utc_stamp as stamp
from linkage.status_charts import chart
from linkage.status_page import AgencyStatus, StatusReport
from monitoring.metrics import FRESHNESS_SLO_SECONDS
from monitoring.status import HISTORY_STEP_S

REFRESH_S = 15
SUCCESS_WARN_BELOW = 0.99
"""Mark an agency's exchange success below this: the alerts page on dead letters above 1 %."""
NONE = "—"
UNAVAILABLE = "unavailable"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #c8c8c8; padding: 0.4rem 0.7rem; text-align: right; vertical-align: top; }
th[scope=row], thead th { text-align: left; background: #f2f2f2; }
.agency-name { display: block; font-weight: normal; font-size: 0.85em; color: #555; }
.bad { color: #a00000; font-weight: bold; }
.unavailable { color: #777; }
.banner { padding: 0.6rem 0.8rem; border-left: 4px solid #2e7d32; background: #f1f8f1; }
.banner.warn { border-color: #b26a00; background: #fff6e5; }
svg.chart { display: block; }
svg.chart .line polyline { fill: none; stroke: #1f5fa8; stroke-width: 1.5; }
svg.chart .base { stroke: #c8c8c8; }
svg.chart circle.latest { fill: #1f5fa8; }
svg.chart text { font-size: 9px; fill: #555; }
svg.chart .no-data { font-size: 11px; fill: #777; }
tr.firing td.alert-status { color: #a00000; font-weight: bold; }
td.alert-summary { text-align: left; }
"""

CHARTS = (
    ("freshness_p99_s", "freshness p99", "s"),
    ("applied_per_s", "applied", "/s"),
    ("dead_letters_per_s", "dead letters", "/s"),
)
"""The charted series, each with its title and unit."""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    if math.isinf(seconds):
        return "over 1 h"
    if seconds < 10:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def rate(per_s: float | None) -> str:
    if per_s is None:
        return NONE
    if per_s == 0:
        return "0/s"
    if per_s < 0.1:
        return "<0.1/s"
    return f"{per_s:,.1f}/s"


def moment(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return NONE
    return f"{stamp(ms)} ({duration(max(0, now_ms - ms) / 1000)} ago)"


def _cell(kind: str, text: str, bad: bool = False) -> str:
    classes = " ".join([kind, *(["bad"] if bad else []), *(["unavailable"] if text == UNAVAILABLE else [])])
    return f'<td class="{classes}">{escape(text)}</td>'


def _freshness(kind: str, seconds: float | None) -> str:
    over = seconds is not None and seconds > FRESHNESS_SLO_SECONDS
    note = f" (over the {FRESHNESS_SLO_SECONDS:.0f} s objective)" if over else ""
    return _cell(kind, duration(seconds) + note, bad=over)


def _row(status: AgencyStatus, now_ms: int) -> str:
    rates, index = status.rates, status.index
    if rates is not None:
        p50, p99 = rates.freshness_p50_s, rates.freshness_p99_s
        dead = ", ".join(f"{reason} {rate(value)}" for reason, value in sorted(rates.dead_letters_per_s.items()))
        flow = [
            _cell("published", rate(rates.published_per_s)),
            _cell("applied", rate(rates.applied_per_s)),
            _cell("dead-letters", dead or "none", bad=any(v > 0 for v in rates.dead_letters_per_s.values())),
            _cell(
                "success",
                NONE if rates.success_ratio is None else f"{rates.success_ratio:.1%}",
                bad=rates.success_ratio is not None and rates.success_ratio < SUCCESS_WARN_BELOW,
            ),
        ]
    else:
        p50 = index.freshness_p50_s if index else None
        p99 = index.freshness_p99_s if index else None
        flow = [_cell(kind, UNAVAILABLE) for kind in ("published", "applied", "dead-letters", "success")]
    held = (
        [_cell("records", UNAVAILABLE), _cell("last-applied", UNAVAILABLE)]
        if index is None
        else [_cell("records", f"{index.records:,}"), _cell("last-applied", moment(index.last_applied_ms, now_ms))]
    )
    cells = [_freshness("freshness-p50", p50), _freshness("freshness-p99", p99), *flow, *held]
    return (
        f'<tr id="agency-{escape(status.agency)}" data-agency="{escape(status.agency)}">'
        f'<th scope="row" class="agency">{escape(status.agency.upper())}'
        f'<span class="agency-name">{escape(status.name)}</span></th>{"".join(cells)}</tr>'
    )


def _source(report: StatusReport) -> str:
    url = escape(report.prometheus_url)
    if report.prometheus_problem is None:
        return (
            f'<p id="source" class="banner">Freshness, rates and dead letters: Prometheus at {url}, '
            f"over the last {report.window_s // 60} minutes.</p>"
        )
    return (
        f'<p id="source" class="banner warn">Prometheus at {url} is not reachable '
        f"({escape(report.prometheus_problem)}): rates, dead letters and exchange success are unavailable. "
        f"Freshness below comes from the index itself: applied time minus source commit time of the records "
        f"applied in the last {report.window_s // 60} minutes.</p>"
    )


def _charts(report: StatusReport) -> str:
    if report.history is None:
        return (
            '<p id="charts-unavailable" class="banner warn">The last hour cannot be charted: Prometheus at '
            f"{escape(report.prometheus_url)} did not answer.</p>"
        )
    now_s = report.generated_ms / 1000
    rows = []
    for status in report.agencies:
        series = report.history.get(status.agency, {})
        cells = "".join(
            f"<td>{chart(status.agency, name, title, unit, series.get(name, ()), now_s, HISTORY_STEP_S)}</td>"
            for name, title, unit in CHARTS
        )
        rows.append(f'<tr class="charts-of"><th scope="row">{escape(status.agency.upper())}</th>{cells}</tr>')
    header = "".join(f"<th>{escape(title.capitalize())}</th>" for _, title, _ in CHARTS)
    return f'<table id="charts"><thead><tr><th>Agency</th>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _alerts(report: StatusReport) -> str:
    where = escape(report.alerts_url)
    if report.alerts is None:
        return (
            f'<p id="alerts-unavailable" class="banner warn">The alert receiver at {where} is not reachable '
            f"({escape(report.alerts_problem or 'no answer')}): delivered alerts are unavailable.</p>"
        )
    if not report.alerts:
        return f'<p id="alerts-none" class="banner">No alert has been delivered (receiver at {where}).</p>'
    rows = []
    for alert in report.alerts:
        labels = alert.get("labels", {})
        source = "/".join(labels[key] for key in ("agency", "dataset") if key in labels) or NONE
        since = str(alert.get("starts_at", ""))[:19].replace("T", " ")
        rows.append(
            f'<tr class="{escape(str(alert.get("status")))}">'
            f'<td class="alert-status">{escape(str(alert.get("status", "?")))}</td>'
            f"<td>{escape(labels.get('severity', NONE))}</td><td>{escape(labels.get('alertname', '?'))}</td>"
            f"<td>{escape(source)}</td><td>{escape(since)} UTC</td>"
            f"<td>{moment(alert.get('received_ms'), report.generated_ms)}</td>"
            f'<td class="alert-summary">{escape(alert.get("annotations", {}).get("summary", ""))}</td></tr>'
        )
    return (
        '<table id="alerts"><thead><tr><th>Status</th><th>Severity</th><th>Alert</th><th>Where</th>'
        f"<th>Since</th><th>Last notified</th><th>Summary</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(report: StatusReport) -> str:
    now = report.generated_ms
    index_note = (
        ""
        if report.index_problem is None
        else (
            f'<p id="index-problem" class="banner warn">The linkage index cannot be read '
            f"({escape(report.index_problem)}): records and last applied change are unavailable.</p>"
        )
    )
    rows = "\n".join(_row(status, now) for status in report.agencies)
    window = f"{report.window_s // 60} min"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<title>GDX exchange status</title>
<style>{STYLE}</style>
</head>
<body>
<h1>GDX exchange status</h1>
<p id="generated">As of {stamp(now)}; this page refreshes every {REFRESH_S} s.</p>
{_source(report)}
{index_note}
<table id="agencies">
<thead><tr><th>Agency</th><th>Freshness p50 ({window})</th><th>Freshness p99 ({window})</th>
<th>Published (per s, {window})</th><th>Applied (per s, {window})</th><th>Dead letters by reason (per s, {window})</th>
<th>Exchange success ({window})</th><th>Records in the index</th><th>Last change applied</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>Freshness: from a change's commit at its agency to its being visible to lookups. Exchange success: of the
changes the backbone finished with, the share applied rather than dead-lettered. Records: live records in the
linkage index. {NONE}: nothing happened in the window.</p>
<h2>The last hour</h2>
{_charts(report)}
<h2>Alerts</h2>
{_alerts(report)}
</body>
</html>
"""
