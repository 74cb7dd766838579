"""Ground-truth dumps: an agency's current state, for reconciliation against the backbone.

One JSON object per line, in (dataset, key) order, so two dumps diff cleanly: the agency, the
dataset, the entity key, the entity version and the payload as the store holds it (dates as ISO
strings, money as decimal strings).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from agencies.errors import SimulationError
from agencies.store import AgencyStore


def truth_lines(agency: str, store: Path, dataset: str | None = None) -> Iterator[str]:
    if not store.is_file():
        raise SimulationError(f"no store for {agency} at {store}", "run `gdx simulate` first, or give --store-dir")
    opened = AgencyStore(store)
    try:
        for entity in opened.entities(dataset):
            yield json.dumps(
                {
                    "agency": agency,
                    "dataset": entity.dataset,
                    "key": entity.key,
                    "version": entity.version,
                    "state": entity.state,
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
    finally:
        opened.close()


def dump(agency: str, store: Path, out: TextIO, dataset: str | None = None) -> int:
    count = 0
    for line in truth_lines(agency, store, dataset):
        out.write(line + "\n")
        count += 1
    return count


def report(agency: str, store: Path) -> dict[str, object]:
    """What an agency holds, wrote and published, and every fault it injected."""
    opened = AgencyStore(store)
    try:
        return {
            "agency": agency,
            "entities": opened.count(),
            "outbox_events": opened.last_seq(),
            "sent_through": opened.sent_through(),
            "backlog": opened.backlog(),
            "faults": opened.fault_counts(),
        }
    finally:
        opened.close()
