"""What the linkage index itself knows about each agency (or each dataset): records held, the last
change applied, and how fresh the recently applied records were (applied time − source commit time).

Why: the status page must say something true about every agency even when Prometheus is away,
and "how many records, and when did the last change land" is the index's own evidence, not a
metric that could have been lost with a restarted worker. The agency is the dataset's prefix
(`dopa.person` → `dopa`), the same name the metrics carry in their `agency` label; the data
catalog groups by the dataset itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from linkage.tables import records

log = logging.getLogger("gdx.status")

RECENT_CAP = 20_000
"""At most this many recent records feed the freshness percentiles: enough for a p99, bounded
however fast an initial load writes."""


@dataclass(frozen=True)
class IndexSummary:
    records: int = 0
    """Live (not deleted) records the index holds."""
    last_applied_ms: int | None = None
    """When the index applied its newest change (UTC, ms since the epoch); None when it holds none."""
    recent: int = 0
    """How many records the freshness percentiles are over (those applied within the window)."""
    freshness_p50_s: float | None = None
    """Applied time − source commit time, median, in seconds; None when nothing was applied in the window."""
    freshness_p99_s: float | None = None


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never an interpolation."""
    return sorted_values[max(1, math.ceil(len(sorted_values) * share)) - 1]


def agency_of(dataset: str) -> str:
    return dataset.split(".", 1)[0]


def dataset_of(dataset: str) -> str:
    return dataset


def summarise(
    engine: Engine, now_ms: int, window_ms: int, with_freshness: bool, group: Callable[[str], str] = agency_of
) -> dict[str, IndexSummary]:
    """Per group of datasets (`agency_of`, or `dataset_of` for each on its own): live records and
    the newest applied time; with `with_freshness`, also the freshness percentiles of the records
    applied within `window_ms` before `now_ms` (the newest `RECENT_CAP` of them, across groups).
    Both are a scan of `records`, so callers run this off the event loop."""
    held: dict[str, list[int]] = {}
    fresh: dict[str, list[float]] = {}
    with engine.connect() as conn:
        counted = conn.execute(
            select(
                records.c.dataset, func.count().filter(records.c.deleted.is_(False)), func.max(records.c.applied_ms)
            ).group_by(records.c.dataset)
        )
        for dataset, live, last in counted:
            totals = held.setdefault(group(dataset), [0, 0])
            totals[0] += int(live or 0)
            totals[1] = max(totals[1], int(last or 0))
        if with_freshness:
            recent = conn.execute(
                select(records.c.dataset, records.c.applied_ms - records.c.source_ms)
                .where(records.c.applied_ms >= now_ms - window_ms)
                .order_by(records.c.applied_ms.desc())
                .limit(RECENT_CAP)
            )
            for dataset, delay_ms in recent:
                fresh.setdefault(group(dataset), []).append(max(0, int(delay_ms)) / 1000)
    summaries = {}
    for key, (live, last) in held.items():
        delays = sorted(fresh.get(key, []))
        summaries[key] = IndexSummary(
            records=live,
            last_applied_ms=last or None,
            recent=len(delays),
            freshness_p50_s=percentile(delays, 0.50) if delays else None,
            freshness_p99_s=percentile(delays, 0.99) if delays else None,
        )
    return summaries


def summarise_or_problem(
    engine: Engine, now_ms: int, window_ms: int, with_freshness: bool, group: Callable[[str], str] = agency_of
) -> tuple[dict[str, IndexSummary] | None, str | None]:
    """`summarise`, or None and the error's class name when the index cannot be read: the pages
    built from it are read when something is wrong, so they say so in a sentence instead of failing."""
    try:
        return summarise(engine, now_ms, window_ms, with_freshness, group), None
    except SQLAlchemyError as exc:
        log.warning("cannot read the index summary", extra={"error": str(exc).splitlines()[0][:300]})
        return None, type(exc).__name__
