"""The simulated agencies' publishers as metrics and readiness, for the `gdx simulate` process.

The agencies report through `agencies.simulation.PublishObserver`; this module is the one place
that turns those reports into `gdx_events_published_total` and `gdx_outbox_backlog`, and decides
when the process counts as ready.
"""

from __future__ import annotations

from collections.abc import Mapping

from agencies.events import Route
from agencies.simulation import Progress
from monitoring import metrics
from monitoring.health_server import Check


class PublisherMetrics:
    """Counts acknowledged records per agency and dataset, and shows each outbox's backlog."""

    def __init__(self, routes: Mapping[str, Mapping[str, Route]], agencies: tuple[str, ...]) -> None:
        self._datasets = {
            agency: {route.topic: dataset for dataset, route in routes[agency].items()} for agency in agencies
        }
        for agency, datasets in self._datasets.items():
            for dataset in datasets.values():
                # Exposed at 0 from the start, so the first acknowledged batch already shows in rate().
                metrics.EVENTS_PUBLISHED.labels(agency=agency, dataset=dataset)

    def acked(self, agency: str, topics: Mapping[str, int]) -> None:
        datasets = self._datasets[agency]
        for topic, records in topics.items():
            metrics.EVENTS_PUBLISHED.labels(agency=agency, dataset=datasets[topic]).inc(records)

    def backlog(self, agency: str, rows: int) -> None:
        metrics.OUTBOX_BACKLOG.labels(agency=agency).set(rows)


def simulation_ready(progress: Progress, publishing: tuple[str, ...]) -> Check:
    """Ready once the initial load is done and every publishing agency is connected to Kafka.

    Reads only what the simulation already keeps in memory, so `/readyz` stays cheap.
    """

    def check() -> str | None:
        if progress.phase == "initial load":
            return f"initial load: {sum(progress.loaded.values()):,} of {progress.to_load:,} records"
        if progress.phase == "starting" and not progress.publishers:
            return "opening the agency stores"
        offline = [
            agency
            for agency in publishing
            if agency not in progress.publishers or not progress.publishers[agency].connected
        ]
        if offline:
            return f"not connected to Kafka: {', '.join(offline)}"
        return None

    return check
