"""A stand-in for the agencies and a stream worker, run as its own process so Prometheus scrapes
series no other test touched: `python tests/support/status_feeder.py TARGETS_DIR` until SIGTERM.

Every 50 ms, per agency: 4 events published and applied, each seen `FRESHNESS_S` after its source
commit; DLT also dead-letters one event as invalid, so its exchange success is 4 / 5.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from monitoring import metrics
from monitoring.health_server import HealthServer

FRESHNESS_S = {"dopa": 0.3, "dbd": 0.7, "dol": 3.0, "dlt": 45.0}
DATASET = {"dopa": "person", "dbd": "juristic-person", "dol": "title-deed", "dlt": "vehicle"}
PER_TICK = 4


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(targets: Path) -> None:
    signal.signal(signal.SIGTERM, _stop)
    with HealthServer("status-feeder", "worker", targets_dir=targets):
        while True:
            for agency, seconds in FRESHNESS_S.items():
                labels = {"agency": agency, "dataset": DATASET[agency]}
                metrics.EVENTS_PUBLISHED.labels(**labels).inc(PER_TICK)
                metrics.EVENTS_APPLIED.labels(**labels).inc(PER_TICK)
                for _ in range(PER_TICK):
                    metrics.FRESHNESS.labels(**labels).observe(seconds)
            metrics.EVENTS_DEAD_LETTERED.labels(agency="dlt", dataset="vehicle", reason="invalid").inc()
            time.sleep(0.05)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
