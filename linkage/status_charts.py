"""The status page's charts: the last hour of one agency's series as a small inline SVG line.

Why drawn on the server: the page carries no script and no external asset, so a chart is plain
markup that any browser, a screenshot or a test can read. Each chart states in its attributes what
it shows (`data-series`, `data-agency`) and how many points it drew (`data-points`), and says
"no data" in words where Prometheus held none.
"""

from __future__ import annotations

from html import escape

from monitoring.status import HISTORY_S, Points

WIDTH, HEIGHT = 260, 64
PAD_X, PAD_TOP, PAD_BOTTOM = 4, 14, 12


def _label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s" if value < 10 else f"{value:,.0f} s"
    return f"{value:,.1f}/s" if value < 100 else f"{value:,.0f}/s"


def _segments(points: Points, step_s: float) -> list[list[tuple[float, float]]]:
    """Split where Prometheus held no value for more than two steps, so a gap is drawn as a gap."""
    segments: list[list[tuple[float, float]]] = []
    last_at: float | None = None
    for at, value in points:
        if last_at is None or at - last_at > 2 * step_s:
            segments.append([])
        segments[-1].append((at, value))
        last_at = at
    return segments


def chart(agency: str, series: str, title: str, unit: str, points: Points, now_s: float, step_s: float) -> str:
    """One SVG chart of `points` over the hour before `now_s`."""
    attributes = (
        f'class="chart" role="img" data-agency="{escape(agency)}" data-series="{escape(series)}" '
        f'data-points="{len(points)}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
    )
    label = f"{agency.upper()} {title}, last hour"
    if not points:
        return (
            f'<svg {attributes} aria-label="{escape(label)}: no data"><text x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            f'text-anchor="middle" class="no-data">no data</text></svg>'
        )
    peak = max(value for _, value in points)
    top = peak or 1.0  # an all-zero line lies on the axis
    start = now_s - HISTORY_S
    plot_w, plot_h = WIDTH - 2 * PAD_X, HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(at: float, value: float) -> tuple[float, float]:
        return (
            PAD_X + max(0.0, min(1.0, (at - start) / HISTORY_S)) * plot_w,
            PAD_TOP + plot_h - (value / top) * plot_h,
        )

    lines = "".join(
        '<polyline points="' + " ".join("{:.1f},{:.1f}".format(*xy(at, v)) for at, v in segment) + '"/>'
        for segment in _segments(points, step_s)
    )
    latest_at, latest = points[-1]
    dot_x, dot_y = xy(latest_at, latest)
    return (
        f'<svg {attributes} aria-label="{escape(label)}: latest {escape(_label(latest, unit))}">'
        f'<text x="{PAD_X}" y="10" class="axis">max {escape(_label(peak, unit))}</text>'
        f'<text x="{WIDTH - PAD_X}" y="10" text-anchor="end" class="latest">now {escape(_label(latest, unit))}</text>'
        f'<line x1="{PAD_X}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_X}" y2="{PAD_TOP + plot_h}" class="base"/>'
        f'<g class="line">{lines}</g><circle class="latest" r="2" cx="{dot_x:.1f}" cy="{dot_y:.1f}"/>'
        f'<text x="{PAD_X}" y="{HEIGHT - 1}" class="axis">−60 min</text>'
        f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 1}" text-anchor="end" class="axis">now</text></svg>'
    )
