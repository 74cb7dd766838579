"""One simulated agency as a source system: its store, its event builder, its fault injector.

Every write goes through `change()`: the entities' new states, the events announcing them (shaped
by the fault knobs) and the fault counts are committed in one SQLite transaction.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agencies.events import CREATE, SNAPSHOT, UPDATE, Change, EventBuilder, Route, references
from agencies.faults import FaultInjector, FaultRates
from agencies.population import Entity
from agencies.store import AgencyStore, Transaction, now_ms
from schemas.catalog import SchemaCatalog

LOAD_BATCH = 5_000


@dataclass
class ChangeSet:
    """The changes of one transaction, in the order their events should leave."""

    tx: Transaction
    builder: EventBuilder
    changes: list[Change] = field(default_factory=list)

    def put(self, dataset: str, key: str, state: dict[str, Any]) -> Change:
        """Write the entity's new state; CREATE for a new entity, UPDATE otherwise."""
        datum = self.builder.datum(dataset, state)
        mentions = references(datum)  # for the ref index and the event's references alike
        version = self.tx.put(dataset, key, datum, mentions)
        change = Change(dataset, key, version, CREATE if version == 1 else UPDATE, datum, mentions)
        self.changes.append(change)
        return change

    def reissue(self, change: Change) -> Change:
        """One more version of an entity with the same state (a correction re-registered)."""
        version = self.tx.put(change.dataset, change.key, change.state or {}, change.mentions)
        return Change(change.dataset, change.key, version, UPDATE, change.state, change.mentions)


class SourceSystem:
    def __init__(
        self,
        agency: str,
        store_path: Path,
        routes: dict[str, Route],
        catalog: SchemaCatalog,
        seed: int,
        faults: FaultRates | None = None,
    ) -> None:
        self.agency = agency
        self.store = AgencyStore(store_path)
        # Seeded by how far the outbox already got, so a resumed run never repeats an event id.
        history = self.store.last_seq()
        self.builder = EventBuilder(agency, routes, catalog, random.Random(f"{seed}/{agency}/events/{history}"))
        self.faults = FaultInjector(faults or FaultRates(), random.Random(f"{seed}/{agency}/faults/{history}"))

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def change(self) -> Iterator[ChangeSet]:
        with self.store.transaction() as tx:
            changes = ChangeSet(tx, self.builder)
            yield changes
            events, counts = self.faults.shape(changes.changes, self.builder, tx.source_ms, changes.reissue)
            tx.emit(events)
            tx.count_faults(counts)

    def load(self, entities: Iterable[Entity], on_batch: Any = None) -> int:
        """The initial load: every entity as a SNAPSHOT event, in batched transactions."""
        loaded = 0
        batch: list[Entity] = []

        def flush() -> None:
            source_ms = now_ms()
            changes = [Change(e.dataset, e.key, 1, SNAPSHOT, e.state, references(e.state)) for e in batch]
            events, counts = self.faults.shape(changes, self.builder, source_ms, None)
            self.store.bulk_load(changes, events, counts, source_ms)
            if on_batch is not None:
                on_batch(self.agency, len(batch))
            batch.clear()

        for entity in entities:
            batch.append(entity)
            loaded += 1
            if len(batch) >= LOAD_BATCH:
                flush()
        if batch:
            flush()
        return loaded
