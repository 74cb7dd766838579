"""One agency's source of truth: an SQLite database holding its entities and its outbox.

A change and the outbox rows announcing it are written in one transaction, so the store and what
will be published can never disagree: either both exist or neither does. The publisher, possibly
another process, reads the outbox through its own connection (WAL lets it read while the agency
writes) and marks rows sent only after the broker acknowledged them.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agencies.events import Change, OutboxEvent, references, to_json
from agencies.sampling import EntitySampler, Stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity (
    dataset TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (dataset, key)
);
CREATE TABLE IF NOT EXISTS ref (
    ref_id TEXT NOT NULL,
    dataset TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (ref_id, dataset, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    stamp_at INTEGER NOT NULL,
    copies INTEGER NOT NULL DEFAULT 1
);
-- The publisher's progress. Rows are acknowledged in seq order, so one watermark says which are
-- sent; publish times are fixed per range of rows before the range is first sent.
CREATE TABLE IF NOT EXISTS outbox_sent (
    id INTEGER PRIMARY KEY CHECK (id = 1), through_seq INTEGER NOT NULL, sent_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_stamp (
    first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, published_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fault (kind TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# IDs an entity refers to by these fields are indexed, so "what does X own" needs no table scan.
_REF_FIELDS = ("house_id", "householder_citizen_id")


PendingRow = tuple[int, str, str, bytes, int, int]  # seq, topic, key, value, stamp_at, copies


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ref_ids(key: str, state: dict[str, Any] | None, mentions: tuple[list[str], list[str]] | None = None) -> set[str]:
    """Identifiers of other entities an entity points at (citizens, companies, houses)."""
    citizens, companies = mentions if mentions is not None else references(state)
    found = set(citizens) | set(companies)
    if state:
        found.update(state[f] for f in _REF_FIELDS if isinstance(state.get(f), str))
    found.discard(key)
    return found


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(_SCHEMA)
    return conn


class Transaction:
    """Writes of one change, made visible together (or not at all) on commit."""

    def __init__(self, conn: sqlite3.Connection, source_ms: int, written: Callable[[str, str], None]) -> None:
        self.conn = conn
        self.source_ms = source_ms
        self.written = written  # told of every entity written, so no stale copy of it is used

    def put(
        self, dataset: str, key: str, state: dict[str, Any], mentions: tuple[list[str], list[str]] | None = None
    ) -> int:
        """Store the entity's new state; returns its new version (1 for a new entity).

        `mentions` are the state's `references`, where the caller has them already.
        """
        row = self.conn.execute(
            "SELECT version, state FROM entity WHERE dataset=? AND key=?", (dataset, key)
        ).fetchone()
        version = row[0] + 1 if row else 1
        self.conn.execute(
            "INSERT INTO entity (dataset, key, version, state, updated_ms) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (dataset, key) DO UPDATE SET version=excluded.version, state=excluded.state, "
            "updated_ms=excluded.updated_ms",
            (dataset, key, version, to_json(state), self.source_ms),
        )
        self.written(dataset, key)
        before = ref_ids(key, json.loads(row[1])) if row else set()
        after = ref_ids(key, state, mentions)
        # Deleted by primary key (the old state names them), so no second index slows the bulk load.
        self.conn.executemany(
            "DELETE FROM ref WHERE ref_id=? AND dataset=? AND key=?", [(r, dataset, key) for r in before - after]
        )
        self.conn.executemany(
            "INSERT OR IGNORE INTO ref (ref_id, dataset, key) VALUES (?, ?, ?)",
            [(r, dataset, key) for r in after - before],
        )
        return version

    def emit(self, events: Iterable[OutboxEvent]) -> None:
        self.conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, value, stamp_at, copies) VALUES (?, ?, ?, ?, ?, ?)",
            [(e.event_id, e.topic, e.key, e.value, e.stamp_at, e.copies) for e in events],
        )

    def count_faults(self, counts: dict[str, int]) -> None:
        self.conn.executemany(
            "INSERT INTO fault (kind, count) VALUES (?, ?) "
            "ON CONFLICT (kind) DO UPDATE SET count = count + excluded.count",
            [(k, n) for k, n in counts.items() if n],
        )

    def set_meta(self, name: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


class AgencyStore:
    """An agency's SQLite database; one instance per connection (one per process or role)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._sampler = EntitySampler(self.conn)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self, source_ms: int | None = None) -> Iterator[Transaction]:
        """One change, committed whole or rolled back whole, also when COMMIT itself fails (SQLite
        then leaves the transaction open, and the sampler would serve states it never committed)."""
        self.conn.execute("BEGIN IMMEDIATE")
        mark = self._sampler.mark()
        try:
            yield Transaction(self.conn, source_ms if source_ms is not None else now_ms(), self._sampler.written)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._sampler.rolled_back(mark)
            raise

    def bulk_load(
        self, changes: list[Change], events: list[OutboxEvent], faults: dict[str, int], source_ms: int
    ) -> None:
        """Insert new entities (version 1) and their snapshot events in one transaction."""
        refs = [(r, c.dataset, c.key) for c in changes for r in ref_ids(c.key, c.state, c.mentions)]
        with self.transaction(source_ms) as tx:
            tx.conn.executemany(
                "INSERT INTO entity (dataset, key, version, state, updated_ms) VALUES (?, ?, ?, ?, ?)",
                [(c.dataset, c.key, c.version, to_json(c.state), source_ms) for c in changes],
            )
            tx.conn.executemany("INSERT OR IGNORE INTO ref (ref_id, dataset, key) VALUES (?, ?, ?)", refs)
            tx.emit(events)
            tx.count_faults(faults)

    # --- reads -----------------------------------------------------------------------------
    def get(self, dataset: str, key: str) -> Stored | None:
        row = self.conn.execute(
            "SELECT version, state FROM entity WHERE dataset=? AND key=?", (dataset, key)
        ).fetchone()
        return Stored(dataset, key, row[0], json.loads(row[1])) if row else None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction for a run of reads, such as a sampling loop.

        Outside a transaction every statement takes and drops the WAL read lock on its own, which
        costs about as much as the read itself. Inside a transaction (reading or writing) this
        adds nothing. Nothing may write to this store from inside the block.
        """
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def random_entities(self, dataset: str, rng: random.Random) -> Iterator[Stored | None]:
        """Uniform random picks of the dataset's entities, for sampling loops (agencies.sampling)."""
        return self._sampler.picks(dataset, rng)

    def referencing(self, ref_id: str, dataset: str | None = None) -> list[Stored]:
        """Entities that point at `ref_id` (e.g. the title deeds a citizen owns)."""
        rows = self.conn.execute(
            "SELECT e.dataset, e.key, e.version, e.state "
            "FROM ref r JOIN entity e ON e.dataset=r.dataset AND e.key=r.key "
            "WHERE r.ref_id=? AND (? IS NULL OR r.dataset=?) ORDER BY e.dataset, e.key",
            (ref_id, dataset, dataset),
        ).fetchall()
        return [Stored(d, k, v, json.loads(s)) for d, k, v, s in rows]

    def entities(self, dataset: str | None = None) -> Iterator[Stored]:
        """Every entity's current state, in key order (the ground truth)."""
        cursor = self.conn.execute(
            "SELECT dataset, key, version, state FROM entity WHERE (? IS NULL OR dataset=?) ORDER BY dataset, key",
            (dataset, dataset),
        )
        for d, k, v, s in cursor:
            yield Stored(d, k, v, json.loads(s))

    def count(self, dataset: str | None = None) -> int:
        return int(
            self.conn.execute(
                "SELECT count(*) FROM entity WHERE (? IS NULL OR dataset=?)", (dataset, dataset)
            ).fetchone()[0]
        )

    def meta(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def fault_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT kind, count FROM fault ORDER BY kind").fetchall())

    # --- the outbox, as the publisher sees it ------------------------------------------------
    def pending(self, after_seq: int, limit: int) -> list[PendingRow]:
        return self.conn.execute(
            "SELECT seq, topic, key, value, stamp_at, copies FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()

    def sent_through(self) -> int:
        row = self.conn.execute("SELECT through_seq FROM outbox_sent WHERE id = 1").fetchone()
        return row[0] if row else 0

    def mark_sent_through(self, seq: int, sent_ms: int) -> None:
        """Every row up to `seq` is acknowledged; their publish-time ranges are no longer needed."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "INSERT INTO outbox_sent (id, through_seq, sent_ms) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET through_seq = max(through_seq, excluded.through_seq), "
            "sent_ms = excluded.sent_ms",
            (seq, sent_ms),
        )
        self.conn.execute("DELETE FROM outbox_stamp WHERE last_seq <= ?", (seq,))
        self.conn.execute("COMMIT")

    def stamps(self) -> list[tuple[int, int, int]]:
        """Publish-time ranges (first_seq, last_seq, published_ms) of rows not yet acknowledged."""
        return self.conn.execute(
            "SELECT first_seq, last_seq, published_ms FROM outbox_stamp ORDER BY first_seq"
        ).fetchall()

    def add_stamp(self, first_seq: int, last_seq: int, published_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO outbox_stamp (first_seq, last_seq, published_ms) VALUES (?, ?, ?)",
            (first_seq, last_seq, published_ms),
        )

    def last_seq(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])

    def backlog(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox WHERE seq > ?", (self.sent_through(),)).fetchone()[0])

    def outbox_rows(self) -> list[tuple[int, str, str, str, bytes, int]]:
        """Every outbox row (seq, event_id, topic, key, value, copies), for audits and tests."""
        return self.conn.execute("SELECT seq, event_id, topic, key, value, copies FROM outbox ORDER BY seq").fetchall()
