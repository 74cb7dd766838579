"""Applying change events to the linkage index: deduplicated, version-guarded, one transaction a batch.

The stream processor delivers at least once; this is where "every change takes effect exactly
once" is made true. Per batch, in one transaction: event ids already processed are duplicates; a
version not above the held one is stale and dropped; a version that skips ahead is applied and its
gap recorded; the newest applied version of each entity replaces its record and its links; every
event id is remembered with its outcome; matching notifications are queued in the notify outbox.
A crash before the commit leaves no trace, and the re-delivered batch is applied afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, exists, func, insert, select

from linkage.index_event import IndexEvent
from linkage.link_rules import PARTY_DATASETS, links_of
from linkage.subscriptions import Subscription
from linkage.tables import links, notify_outbox, records, version_gaps
from schemas.json_form import to_json

APPLIED = "applied"
DUPLICATE = "duplicate"
STALE = "stale"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class BatchResult:
    """What one batch did, event by event, for metrics and for the caller's own bookkeeping."""

    outcomes: list[str] = field(default_factory=list)
    applied: list[IndexEvent] = field(default_factory=list)
    gaps: int = 0
    notifications: int = 0
    applied_ms: int = 0


def _by_dataset(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for dataset, entity_key in keys:
        grouped.setdefault(dataset, []).append(entity_key)
    return grouped


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class IndexStore:
    def __init__(self, engine: Engine, subscriptions: Sequence[Subscription] = ()) -> None:
        self.engine = engine
        self.subscriptions = tuple(subscriptions)
        self._ph = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
        columns = [c.name for c in records.columns]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("dataset", "entity_key"))
        self._upsert_record = (
            f"INSERT INTO records ({', '.join(columns)}) VALUES ({self._in(len(columns))}) "
            f"ON CONFLICT (dataset, entity_key) DO UPDATE SET {updates}"
        )
        link_columns = [c.name for c in links.columns if c.name != "id"]
        self._insert_link = f"INSERT INTO links ({', '.join(link_columns)}) VALUES ({self._in(len(link_columns))})"

    def apply(self, events: Sequence[IndexEvent], applied_ms: int | None = None) -> BatchResult:
        result = BatchResult(applied_ms=applied_ms or now_ms())
        if not events:
            return result
        with self.engine.begin() as conn:
            seen = self._processed(conn, [e.event_id for e in events])
            held = self._held_versions(conn, list({e.key for e in events}))
            newest: dict[tuple[str, str], IndexEvent] = {}
            processed_rows, gap_rows = [], []
            for event in events:
                if event.event_id in seen:
                    result.outcomes.append(DUPLICATE)
                    continue
                seen.add(event.event_id)
                current = held.get(event.key)
                if current is not None and event.entity_version <= current:
                    outcome = STALE
                else:
                    if self._is_gap(event, current):
                        gap_rows.append({"dataset": event.dataset, "entity_key": event.entity_key,
                                         "held_version": current, "applied_version": event.entity_version,
                                         "recorded_ms": result.applied_ms})
                    held[event.key] = event.entity_version
                    newest[event.key] = event
                    result.applied.append(event)
                    outcome = APPLIED
                result.outcomes.append(outcome)
                processed_rows.append((event.event_id, outcome, result.applied_ms))
            self._write_records(conn, list(newest.values()), result.applied_ms)
            if processed_rows:
                conn.exec_driver_sql(
                    f"INSERT INTO processed_events (event_id, outcome, processed_ms) VALUES ({self._in(3)})",
                    processed_rows)
            if gap_rows:
                conn.execute(insert(version_gaps), gap_rows)
            result.gaps = len(gap_rows)
            result.notifications = self._queue_notifications(conn, result.applied, result.applied_ms)
        return result

    @staticmethod
    def _is_gap(event: IndexEvent, held: int | None) -> bool:
        if held is None:
            return event.entity_version > 1 and event.change_type != "SNAPSHOT"
        return event.entity_version > held + 1

    def _in(self, count: int) -> str:
        return ", ".join([self._ph] * count)

    def _processed(self, conn: Connection, event_ids: list[str]) -> set[str]:
        seen: set[str] = set()
        for chunk in _chunks(event_ids):
            sql = f"SELECT event_id FROM processed_events WHERE event_id IN ({self._in(len(chunk))})"
            seen.update(row[0] for row in conn.exec_driver_sql(sql, tuple(chunk)))
        return seen

    def _held_versions(self, conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        held: dict[tuple[str, str], int] = {}
        for dataset, entity_keys in _by_dataset(keys).items():
            for chunk in _chunks(entity_keys):
                sql = (f"SELECT entity_key, entity_version FROM records WHERE dataset = {self._ph} "
                       f"AND entity_key IN ({self._in(len(chunk))})")
                held.update({(dataset, k): v for k, v in conn.exec_driver_sql(sql, (dataset, *chunk))})
        return held

    def _write_records(self, conn: Connection, events: list[IndexEvent], applied_ms: int) -> None:
        """Upsert the records, then replace their links: executemany at the driver, because
        SQLAlchemy's per-row parameter processing cost more than the database itself here."""
        if not events:
            return
        conn.exec_driver_sql(self._upsert_record, [
            (e.dataset, e.entity_key, e.agency, e.dataset_code, e.entity_version, e.change_type, e.payload is None,
             None if e.payload is None else to_json(e.payload), e.event_id, e.trace_id, e.source_ms,
             e.published_ms, applied_ms)
            for e in events
        ])
        for dataset, entity_keys in _by_dataset([e.key for e in events]).items():
            for chunk in _chunks(entity_keys):
                sql = f"DELETE FROM links WHERE dataset = {self._ph} AND entity_key IN ({self._in(len(chunk))})"
                conn.exec_driver_sql(sql, (dataset, *chunk))
        link_rows = [
            (e.dataset, e.entity_key, link.relation, link.party_kind, link.party_id, link.share, applied_ms)
            for e in events
            for link in links_of(e.dataset, e.entity_key, e.payload, list(e.citizen_ids), list(e.juristic_ids))
        ]
        if link_rows:
            conn.exec_driver_sql(self._insert_link, link_rows)

    def _queue_notifications(self, conn: Connection, applied: list[IndexEvent], applied_ms: int) -> int:
        rows = []
        for subscription in self.subscriptions:
            for event in applied:
                if event.dataset not in subscription.datasets or event.change_type not in subscription.change_types:
                    continue
                for party_kind, party_id in conn.execute(
                    select(links.c.party_kind, links.c.party_id).where(
                        links.c.dataset == event.dataset, links.c.entity_key == event.entity_key,
                        links.c.relation == subscription.party_relation)
                ):
                    linked = self._linked_records(conn, party_kind, party_id, subscription.linked_to)
                    if subscription.linked_to and not linked:
                        continue
                    message = {
                        "consumer": subscription.consumer, "subscription": subscription.description,
                        "event_id": event.event_id, "dataset": event.dataset, "entity_key": event.entity_key,
                        "entity_version": event.entity_version, "change_type": event.change_type,
                        "source_ms": event.source_ms, "applied_ms": applied_ms, "trace_id": event.trace_id,
                        "party": {"kind": party_kind, "id": party_id}, "linked": linked,
                    }
                    rows.append({"consumer": subscription.consumer, "message_key": party_id,
                                 "message": json.dumps(message, ensure_ascii=False, sort_keys=True),
                                 "created_ms": applied_ms})
        if rows:
            conn.execute(insert(notify_outbox), rows)
        return len(rows)

    @staticmethod
    def _linked_records(conn: Connection, party_kind: str, party_id: str, datasets: frozenset[str]) -> list[dict[str, str]]:
        query = select(links.c.dataset, links.c.entity_key, links.c.relation).where(
            links.c.party_kind == party_kind, links.c.party_id == party_id)
        if datasets:
            query = query.where(links.c.dataset.in_(sorted(datasets)))
        return [{"dataset": d, "entity_key": k, "relation": r} for d, k, r in conn.execute(query.order_by(links.c.id))]

    def pending_links(self) -> dict[str, tuple[int, int]]:
        """Per dataset of the naming record: links whose party the index does not hold yet, and
        when the oldest of them was made (epoch ms)."""
        party_dataset = case(PARTY_DATASETS, value=links.c.party_kind)
        party_known = exists().where(
            records.c.entity_key == links.c.party_id, records.c.deleted.is_(False), records.c.dataset == party_dataset,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(links.c.dataset, func.count(), func.min(links.c.linked_ms))
                .where(~party_known).group_by(links.c.dataset)
            )
            return {dataset: (int(count), int(oldest)) for dataset, count, oldest in rows}

    def notifications(self, limit: int = 500) -> list[tuple[int, str, str, str]]:
        """Queued notifications, oldest first: (id, consumer, key, JSON message)."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(  # type: ignore[misc]
                select(notify_outbox.c.id, notify_outbox.c.consumer, notify_outbox.c.message_key,
                       notify_outbox.c.message).order_by(notify_outbox.c.id).limit(limit)
            )]

    def forget_notifications(self, ids: Sequence[int]) -> None:
        """Drop notifications the broker acknowledged."""
        with self.engine.begin() as conn:
            for chunk in _chunks(list(ids)):
                conn.execute(delete(notify_outbox).where(notify_outbox.c.id.in_(chunk)))
