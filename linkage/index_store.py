"""Applying change events to the linkage index: deduplicated, version-guarded, one transaction a batch.

The stream processor delivers at least once; this is where "every change takes effect exactly
once" is made true. Per batch, in one transaction: an event whose id the entity's record holds is
a duplicate (the version it applied is still there); a version not above the held one is stale
and dropped, and so is any other re-delivery, which carries a version the record has since passed;
a version that skips ahead is applied and its gap recorded; the newest applied version of each
entity replaces its record and its links; matching notifications are queued in the notify outbox.
A crash before the commit leaves no trace, and the re-delivered batch is applied afresh. No table
of every event id seen is kept: the record's own event id and version decide every re-delivery,
and such a table cost a random-key insert and lookup per event in a B-tree as large as the stream.

A subscription's condition ("the deceased owned a vehicle") is asked as of the watched change's
source time, not as of the moment the worker applies it: the worker meets a death and the
vehicle's versions in whatever order their partitions and batches happen to interleave, so an
inheritance may already have replaced the owner, or the vehicle may not have arrived yet. Links
that newer versions replace are therefore kept with the source-time span they held for, and a
link that arrives after the change it satisfies still notifies, once.

What the index only needs for a while is pruned by `Retention`: link history and notified marks
as far back as a change may arrive late, and version gaps as long as an operator may look at them.
A change older than the late horizon is not looked for again when a late link arrives, so a
pruned mark can never cause a second notice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from linkage import pending_links
from linkage.batch_transaction import batch_transaction
from linkage.driver_sql import Members, RowInsert, chunks, grouped, placeholder, placeholders
from linkage.index_event import IndexEvent
from linkage.link_rules import Link
from linkage.subscriptions import Subscription
from linkage.tables import (
    access_log,
    link_history,
    links,
    notified,
    notify_outbox,
    records,
    version_gaps,
)
from schemas.json_form import to_json

APPLIED = "applied"
DUPLICATE = "duplicate"
STALE = "stale"
VERSION_JUMP = "version-jump"
MAX_VERSION_JUMP = 1_000
"""How far past the held version (0 for an entity not held) an event may leap: real entities move
one version a change, a gap being a few lost or late changes, while one forged version near 2^63
would make every genuine later one stale for ever."""

_LINKED_RECORDS = "links l JOIN records r ON r.dataset = l.dataset AND r.entity_key = l.entity_key"


DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


_NOTICES = uuid.UUID("6f1c2d3e-9a4b-5c6d-8e7f-0a1b2c3d4e5f")


def notice_id(consumer: str, event_id: str, party_id: str) -> str:
    """The same for every sending of one notice: a consumer recognises a notice sent again after a
    crash, and its audit records and access-log rows share the id."""
    return str(uuid.uuid5(_NOTICES, f"{consumer}/{event_id}/{party_id}"))


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the index remembers what it needs only for a while (milliseconds)."""

    late_ms: int = 30 * DAY_MS
    """Link history (by source time) and notified marks: how late a change may arrive and still be
    judged, and told, as of its source time."""
    gaps_ms: int = 30 * DAY_MS
    """Version gaps: a diagnostic record for operators."""


@dataclass
class BatchResult:
    """What one batch did, event by event, for metrics and for the caller's own bookkeeping."""

    outcomes: list[str] = field(default_factory=list)
    applied: list[IndexEvent] = field(default_factory=list)
    gaps: int = 0
    notifications: int = 0
    applied_ms: int = 0

    def extend(self, later: BatchResult) -> None:
        """Append the result of a batch applied after this one."""
        self.outcomes += later.outcomes
        self.applied += later.applied
        self.gaps += later.gaps
        self.notifications += later.notifications
        self.applied_ms = max(self.applied_ms, later.applied_ms)


@dataclass(frozen=True, slots=True)
class _Stated:
    """The links one applied version states, and the source time a later version of the same
    batch replaced them at (None: they are the record's links now)."""

    event: IndexEvent
    links: tuple[Link, ...]
    until_ms: int | None


@dataclass(frozen=True, slots=True)
class _Watched:
    """A change a subscription watches, about one of its parties."""

    dataset: str
    entity_key: str
    entity_version: int
    change_type: str
    event_id: str
    trace_id: str
    source_ms: int
    party_kind: str
    party_id: str


def _stated(events: list[IndexEvent]) -> list[_Stated]:
    following: dict[tuple[str, str], int] = {}
    stated = []
    for event in reversed(events):
        stated.append(_Stated(event, event.links, following.get(event.key)))
        following[event.key] = event.source_ms
    return stated[::-1]


class IndexStore:
    def __init__(
        self,
        engine: Engine,
        subscriptions: Sequence[Subscription] = (),
        track_pending: bool = True,
        retention: Retention | None = None,
        max_version_jump: int = MAX_VERSION_JUMP,
    ) -> None:
        """`track_pending=False`: leave `pending_links` alone, for a replay that computes it once at
        its end (`pending_links.recompute`) instead of batch by batch. `retention=None`: remember
        everything (a replay, a test); a worker passes one and calls `prune`."""
        self.engine = engine
        self.retention = retention
        self.max_version_jump = max_version_jump
        # Two workers may apply overlapping batches (a zombie after a session timeout, a rebalance).
        # Every decision of a batch — duplicate, stale, which links a notice names — reads rows
        # another open transaction may be writing; SERIALIZABLE turns such a race into a
        # serialization failure, which the worker retries, so the outcome is that of some serial
        # order. SQLite's batches queue for the one writer instead (`linkage.batch_transaction`).
        self._writer = (
            engine.execution_options(isolation_level="SERIALIZABLE") if engine.dialect.name == "postgresql" else engine
        )
        self.track_pending = track_pending
        self.subscriptions = tuple(subscriptions)
        # The datasets whose replaced links a subscription's condition may still need; None: all,
        # since a subscription without linked_to lists the party's every link in its notices.
        self._history_datasets: frozenset[str] | None = (
            None
            if any(not s.linked_to for s in self.subscriptions)
            else frozenset().union(*(s.linked_to for s in self.subscriptions))
        )
        self._ph = placeholder(engine)
        self._members = Members(engine)
        columns = [c.name for c in records.columns]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("dataset", "entity_key"))
        self._upsert_records = RowInsert(
            engine,
            records,
            columns,
            f"ON CONFLICT (dataset, entity_key) DO UPDATE SET {updates} "
            "WHERE excluded.entity_version > records.entity_version",
        )
        self._insert_links = RowInsert(engine, links, [c.name for c in links.columns if c.name != "id"])
        history_columns = "dataset, entity_key, relation, party_kind, party_id, valid_from_ms, valid_to_ms"
        self._insert_history = f"INSERT INTO link_history ({history_columns}) VALUES ({self._in(7)})"
        self._retire_links = (
            f"INSERT INTO link_history ({history_columns}) "
            "SELECT l.dataset, l.entity_key, l.relation, l.party_kind, l.party_id, r.source_ms, "
            f"CAST({self._ph} AS BIGINT) "
            f"FROM {_LINKED_RECORDS} WHERE l.dataset = {self._ph} AND l.entity_key = {self._ph}"
        )

    def apply(self, events: Sequence[IndexEvent], applied_ms: int | None = None) -> BatchResult:
        result = BatchResult(applied_ms=applied_ms or now_ms())
        if not events:
            return result
        with batch_transaction(self._writer) as conn:
            held_ids = self._held(conn, list({e.key for e in events}))
            held = {key: version for key, (version, _) in held_ids.items()}
            held_before = set(held)
            seen = {event_id for _, event_id in held_ids.values()}
            newest: dict[tuple[str, str], IndexEvent] = {}
            gap_rows = []
            for event in events:
                if event.event_id in seen:
                    result.outcomes.append(DUPLICATE)
                    continue
                seen.add(event.event_id)
                current = held.get(event.key)
                if event.entity_version > (current or 0) + self.max_version_jump:
                    result.outcomes.append(VERSION_JUMP)
                    continue
                if current is not None and event.entity_version <= current:
                    outcome = STALE
                else:
                    if self._is_gap(event, current):
                        gap_rows.append(
                            {
                                "dataset": event.dataset,
                                "entity_key": event.entity_key,
                                "held_version": current,
                                "applied_version": event.entity_version,
                                "recorded_ms": result.applied_ms,
                            }
                        )
                    held[event.key] = event.entity_version
                    newest[event.key] = event
                    result.applied.append(event)
                    outcome = APPLIED
                result.outcomes.append(outcome)
            stated = _stated([e for e in result.applied if self._keeps_history(e.dataset)])
            self._write_history(conn, stated, held_before)
            self._write_records(conn, list(newest.values()), result.applied_ms)
            if gap_rows:
                conn.execute(insert(version_gaps), gap_rows)
            result.gaps = len(gap_rows)
            result.notifications = self._queue_notifications(conn, result.applied, stated, result.applied_ms)
        return result

    def prune(self, at_ms: int) -> None:
        """Forget what `retention` no longer needs, as of `at_ms`."""
        if self.retention is None:
            return
        keep = self.retention
        with self.engine.begin() as conn:
            conn.execute(delete(link_history).where(link_history.c.valid_to_ms < at_ms - keep.late_ms))
            conn.execute(delete(notified).where(notified.c.notified_ms < at_ms - keep.late_ms))
            conn.execute(delete(version_gaps).where(version_gaps.c.recorded_ms < at_ms - keep.gaps_ms))

    @staticmethod
    def _is_gap(event: IndexEvent, held: int | None) -> bool:
        if held is None:
            return event.entity_version > 1 and event.change_type != "SNAPSHOT"
        return event.entity_version > held + 1

    def _keeps_history(self, dataset: str) -> bool:
        return self._history_datasets is None or dataset in self._history_datasets

    def _in(self, count: int) -> str:
        return placeholders(self._ph, count)

    def _held(self, conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
        """The version and event id of each record the index holds among `keys`."""
        held: dict[tuple[str, str], tuple[int, str]] = {}
        for dataset, entity_keys in grouped(keys).items():
            for chunk in chunks(entity_keys):
                sql = (
                    f"SELECT entity_key, entity_version, event_id FROM records WHERE dataset = {self._ph} "
                    f"AND {self._members('entity_key', len(chunk))}"
                )
                held.update(
                    {
                        (dataset, k): (v, e)
                        for k, v, e in conn.exec_driver_sql(sql, (dataset, *self._members.values(chunk)))
                    }
                )
        return held

    def _write_records(self, conn: Connection, events: list[IndexEvent], applied_ms: int) -> None:
        """Upsert the records, then replace their links: executemany at the driver, because
        SQLAlchemy's per-row parameter processing cost more than the database itself here. In key
        order: two workers writing overlapping batches (a zombie, a rebalance) then take their row
        locks in one order and wait for each other instead of deadlocking, which PostgreSQL only
        detects after its deadlock_timeout (a second per deadlock)."""
        if not events:
            return
        events = sorted(events, key=lambda e: e.key)
        self._upsert_records(
            conn,
            [
                (
                    e.dataset,
                    e.entity_key,
                    e.agency,
                    e.dataset_code,
                    e.entity_version,
                    e.change_type,
                    e.payload is None,
                    None if e.payload is None else to_json(e.payload),
                    e.event_id,
                    e.trace_id,
                    e.source_ms,
                    e.published_ms,
                    applied_ms,
                    e.signed_by,
                )
                for e in events
            ],
        )
        for dataset, entity_keys in grouped([e.key for e in events]).items():
            for chunk in chunks(entity_keys):
                sql = f"DELETE FROM links WHERE dataset = {self._ph} AND {self._members('entity_key', len(chunk))}"
                conn.exec_driver_sql(sql, (dataset, *self._members.values(chunk)))
        link_rows = [
            (e.dataset, e.entity_key, link.relation, link.party_kind, link.party_id, link.share, applied_ms)
            for e in events
            for link in e.links
        ]
        self._insert_links(conn, link_rows)
        if self.track_pending:
            pending_links.refresh(
                conn, self._members, [e.key for e in events], [e.key for e in events if e.payload is None]
            )

    def _write_history(self, conn: Connection, stated: list[_Stated], held_before: set[tuple[str, str]]) -> None:
        """Keep the links this batch replaces with the source-time span each held for: those of the
        versions held so far (read before their records are overwritten), and those of versions
        the batch itself applied and then replaced."""
        first: dict[tuple[str, str], IndexEvent] = {}
        for item in stated:
            first.setdefault(item.event.key, item.event)
        retired = [(e.source_ms, e.dataset, e.entity_key) for key, e in first.items() if key in held_before]
        if retired:
            conn.exec_driver_sql(self._retire_links, retired)
        replaced = [
            (
                item.event.dataset,
                item.event.entity_key,
                link.relation,
                link.party_kind,
                link.party_id,
                item.event.source_ms,
                item.until_ms,
            )
            for item in stated
            if item.until_ms is not None
            for link in item.links
        ]
        if replaced:
            conn.exec_driver_sql(self._insert_history, replaced)

    def _queue_notifications(
        self, conn: Connection, applied: list[IndexEvent], stated: list[_Stated], applied_ms: int
    ) -> int:
        oldest_ms = applied_ms - self.retention.late_ms if self.retention else None
        watched = [
            (s, change) for s in self.subscriptions for change in self._watched(conn, s, applied, stated, oldest_ms)
        ]
        if not watched:
            return 0
        told = self._told(conn, sorted({change.event_id for _, change in watched}))
        rows, marks = [], []
        for subscription, change in watched:
            mark = (subscription.consumer, change.event_id, change.party_id)
            if mark in told:
                continue
            linked = self._linked_at(conn, change.party_kind, change.party_id, change.source_ms, subscription.linked_to)
            if subscription.linked_to and not linked:
                continue
            told.add(mark)
            message = {
                "notice_id": notice_id(subscription.consumer, change.event_id, change.party_id),
                "consumer": subscription.consumer,
                "purpose": subscription.purpose,
                "subscription": subscription.description,
                "event_id": change.event_id,
                "dataset": change.dataset,
                "entity_key": change.entity_key,
                "entity_version": change.entity_version,
                "change_type": change.change_type,
                "source_ms": change.source_ms,
                "applied_ms": applied_ms,
                "trace_id": change.trace_id,
                "party": {"kind": change.party_kind, "id": change.party_id},
                "linked": linked,
            }
            rows.append(
                {
                    "consumer": subscription.consumer,
                    "message_key": change.party_id,
                    "message": json.dumps(message, ensure_ascii=False, sort_keys=True),
                    "created_ms": applied_ms,
                }
            )
            marks.append(
                {
                    "consumer": subscription.consumer,
                    "event_id": change.event_id,
                    "party_id": change.party_id,
                    "notified_ms": applied_ms,
                }
            )
        if rows:
            conn.execute(insert(notify_outbox), rows)
            conn.execute(insert(notified), marks)
        return len(rows)

    def _watched(
        self,
        conn: Connection,
        subscription: Subscription,
        applied: list[IndexEvent],
        stated: list[_Stated],
        oldest_ms: int | None,
    ) -> list[_Watched]:
        """The watched changes this batch may have made notifiable: its own, and earlier ones whose
        condition a link of this batch may meet."""
        found = [
            _Watched(
                e.dataset,
                e.entity_key,
                e.entity_version,
                e.change_type,
                e.event_id,
                e.trace_id,
                e.source_ms,
                link.party_kind,
                link.party_id,
            )
            for e in applied
            if e.dataset in subscription.datasets and e.change_type in subscription.change_types
            for link in e.links
            if link.relation == subscription.party_relation
        ]
        if subscription.linked_to:
            found += self._met_late(conn, subscription, stated, oldest_ms)
        return found

    def _met_late(
        self, conn: Connection, subscription: Subscription, stated: list[_Stated], oldest_ms: int | None
    ) -> list[_Watched]:
        """Watched changes already in the index about a party that a link of this batch names at
        the change's source time: the vehicle's version reached the worker after the death. Not
        those older than `oldest_ms`, whose notified marks may be pruned."""
        spans: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
        for item in stated:
            if item.event.dataset in subscription.linked_to:
                for link in item.links:
                    spans.setdefault((link.party_kind, link.party_id), []).append((item.event.source_ms, item.until_ms))
        watched_datasets, change_types = sorted(subscription.datasets), sorted(subscription.change_types)
        found = []
        for party_kind, party_ids in grouped(spans).items():
            for chunk in chunks(party_ids):
                sql = (
                    "SELECT r.dataset, r.entity_key, r.entity_version, r.change_type, r.event_id, r.trace_id, "
                    f"r.source_ms, l.party_id FROM {_LINKED_RECORDS} WHERE l.party_kind = {self._ph} "
                    f"AND {self._members('l.party_id', len(chunk))} "
                    f"AND l.dataset IN ({self._in(len(watched_datasets))}) "
                    f"AND l.relation = {self._ph} AND r.change_type IN ({self._in(len(change_types))})"
                )
                params = (
                    party_kind,
                    *self._members.values(chunk),
                    *watched_datasets,
                    subscription.party_relation,
                    *change_types,
                )
                for dataset, key, version, change_type, event_id, trace_id, source_ms, party_id in conn.exec_driver_sql(
                    sql, params
                ):
                    candidate = _Watched(
                        dataset, key, version, change_type, event_id, trace_id, source_ms, party_kind, party_id
                    )
                    if oldest_ms is not None and candidate.source_ms < oldest_ms:
                        continue
                    if any(
                        start <= candidate.source_ms and (until is None or candidate.source_ms <= until)
                        for start, until in spans[(party_kind, party_id)]
                    ):
                        found.append(candidate)
        return found

    @staticmethod
    def _told(conn: Connection, event_ids: list[str]) -> set[tuple[str, str, str]]:
        told: set[tuple[str, str, str]] = set()
        for chunk in chunks(event_ids):
            told.update(
                (c, e, p)
                for c, e, p in conn.execute(
                    select(notified.c.consumer, notified.c.event_id, notified.c.party_id).where(
                        notified.c.event_id.in_(chunk)
                    )
                )
            )
        return told

    def _linked_at(
        self, conn: Connection, party_kind: str, party_id: str, at_ms: int, datasets: frozenset[str]
    ) -> list[dict[str, str]]:
        """The party's links as they stood at source time `at_ms`: a link held at that very
        millisecond counts whether it began or ended there, as an inheritance registered in the
        death's own millisecond still follows the death."""
        ph, only = self._ph, sorted(datasets)
        current = (
            f"SELECT l.dataset, l.entity_key, l.relation FROM {_LINKED_RECORDS} "
            f"WHERE l.party_kind = {ph} AND l.party_id = {ph} AND r.source_ms <= {ph}"
        )
        replaced = (
            "SELECT dataset, entity_key, relation FROM link_history "
            f"WHERE party_kind = {ph} AND party_id = {ph} AND valid_from_ms <= {ph} AND valid_to_ms >= {ph}"
        )
        if only:
            current += f" AND l.dataset IN ({self._in(len(only))})"
            replaced += f" AND dataset IN ({self._in(len(only))})"
        params = (party_kind, party_id, at_ms, *only, party_kind, party_id, at_ms, at_ms, *only)
        rows = sorted(conn.exec_driver_sql(f"{current} UNION {replaced}", params))
        return [{"dataset": d, "entity_key": k, "relation": r} for d, k, r in rows]

    def pending_links(self) -> dict[str, tuple[int, int]]:
        """Per dataset of the naming record: links whose party the index does not hold yet, and
        when the oldest of them was made (epoch ms)."""
        with self.engine.connect() as conn:
            return pending_links.counts(conn)

    def notifications(self, limit: int = 500) -> list[tuple[int, str, str, str]]:
        """Queued notifications, oldest first: (id, consumer, key, JSON message)."""
        with self.engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    select(
                        notify_outbox.c.id,
                        notify_outbox.c.consumer,
                        notify_outbox.c.message_key,
                        notify_outbox.c.message,
                    )
                    .order_by(notify_outbox.c.id)
                    .limit(limit)
                )
            ]

    def forget_notifications(self, sent: Sequence[tuple[int, dict[str, Any] | None]]) -> None:
        """Drop notifications the broker acknowledged, each (outbox id, its access-log row or None),
        entering them in their subjects' access log in the same transaction: a notice is either
        still queued or on the record. Only the rows this call removed are entered, so a notice
        that two workers both sent (each read the outbox before the other forgot it) is in the
        access log once."""
        rows = dict(sent)
        with self.engine.begin() as conn:
            removed: list[int] = []
            for chunk in chunks(list(rows)):
                deleted = conn.execute(
                    delete(notify_outbox).where(notify_outbox.c.id.in_(chunk)).returning(notify_outbox.c.id)
                )
                removed.extend(deleted.scalars())
            entered = [row for outbox_id in sorted(removed) if (row := rows[outbox_id]) is not None]
            if entered:
                conn.execute(insert(access_log), entered)
