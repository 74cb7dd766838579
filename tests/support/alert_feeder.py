"""A stand-in for the agencies and a stream worker whose health a test switches while it runs:
`python tests/support/alert_feeder.py TARGETS_DIR CONTROL_FILE` until SIGTERM.

Every 100 ms each agency publishes, and the worker consumes and applies, 10 events. The control
file holds words: `dead-letters` makes DLT dead-letter one in ten of its events, `silent-dopa`
makes DOPA publish nothing (its publisher stays up); anything else is healthy.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from monitoring import metrics
from monitoring.health_server import HealthServer

DATASET = {"dopa": "person", "dbd": "juristic-person", "dol": "title-deed", "dlt": "vehicle"}
PER_TICK = 10


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(targets: Path, control: Path) -> None:
    signal.signal(signal.SIGTERM, _stop)
    with HealthServer("alert-feeder", "worker", targets_dir=targets):
        while True:
            words = control.read_text().split() if control.is_file() else []
            for agency, dataset in DATASET.items():
                if agency == "dopa" and "silent-dopa" in words:
                    continue
                labels = {"agency": agency, "dataset": dataset}
                metrics.EVENTS_PUBLISHED.labels(**labels).inc(PER_TICK)
                metrics.EVENTS_CONSUMED.labels(**labels).inc(PER_TICK)
                dead = 1 if agency == "dlt" and "dead-letters" in words else 0
                metrics.EVENTS_APPLIED.labels(**labels).inc(PER_TICK - dead)
                if dead:
                    metrics.EVENTS_DEAD_LETTERED.labels(reason="invalid", **labels).inc(dead)
            time.sleep(0.1)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
