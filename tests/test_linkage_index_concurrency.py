"""Two workers applying overlapping batches at once (a zombie after a session timeout, a
rebalance) leave the index and its notifications exactly as one worker alone would, on a real
PostgreSQL and on an SQLite file shared by two connections.

Each round, two stores apply every event (full overlap) in different batchings and orders, as far
as Kafka allows (one entity's versions stay in order), started together on a barrier; the result
is compared with a serial run. A transient refusal is retried, as the worker does. A trigger makes
each record's write take a few milliseconds, as on a loaded server, so the transactions overlap
between reading held versions and links and writing (on SQLite, the trigger calls a function of
the connection that sleeps).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select

from linkage.database import index_engine, transient_reason
from linkage.index_event import IndexEvent
from linkage.index_store import IndexStore
from linkage.migrate import drop_all, upgrade
from linkage.subscriptions import load_subscriptions
from linkage.tables import links, metadata, notified, notify_outbox, records
from schemas.examples import MALEE
from schemas.identifiers import with_check_digit
from tests.support.linkage_support import citizen_party, index_event

DEATH_MS = 1_717_234_200_000
PEOPLE = 12
ROUNDS = 15
_SLOW_WRITES = """
CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.003); RETURN NEW; END $$;
CREATE TRIGGER slow_write BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION slow_write();
"""
_SLOW_WRITES_SQLITE = "CREATE TRIGGER slow_write BEFORE INSERT ON records BEGIN SELECT slow_write(); END"


def _slow_writes(engine: Engine) -> None:
    """Every record's insert sleeps 3 ms, on every connection the engine opens from now on."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS slow_write() CASCADE")
            conn.exec_driver_sql(_SLOW_WRITES)
        return
    engine.dispose()
    event.listen(engine, "connect", lambda dbapi, _: dbapi.create_function("slow_write", 0, lambda: time.sleep(0.003)))
    with engine.begin() as conn:
        conn.exec_driver_sql(_SLOW_WRITES_SQLITE)


def _story(index: int) -> list[list[IndexEvent]]:
    """One person's vehicle (three versions, in order) and their death, as two partitions."""
    person = with_check_digit(f"3{index:011d}")
    chassis = f"MR0FZ29G2{index:08d}"
    vehicle = [
        index_event(
            "dlt.vehicle",
            1,
            "CREATE",
            source_ms=DEATH_MS - 9000,
            chassis_number=chassis,
            owner=citizen_party(person),
            possessor=None,
        ),
        index_event(
            "dlt.vehicle",
            2,
            "UPDATE",
            source_ms=DEATH_MS - 5000,
            chassis_number=chassis,
            owner=citizen_party(person),
            possessor=None,
            colour="ดำ",
        ),
        index_event(
            "dlt.vehicle",
            3,
            "UPDATE",
            source_ms=DEATH_MS + 500,
            chassis_number=chassis,
            owner=citizen_party(MALEE),
            possessor=None,
        ),
    ]
    death = [
        index_event(
            "dopa.death",
            source_ms=DEATH_MS,
            certificate_number=f"D-{index}",
            citizen_id=person,
            informant_citizen_id=MALEE,
        )
    ]
    return [vehicle, death]


def _interleaved(partitions: list[list[IndexEvent]], death_first: bool) -> list[IndexEvent]:
    """Round robin over the partitions, as a consumer's fetches mix them; each keeps its order."""
    vehicles = [p for p in partitions if p[0].dataset == "dlt.vehicle"]
    deaths = [p for p in partitions if p[0].dataset == "dopa.death"]
    ordered = [*deaths, *vehicles] if death_first else [*vehicles, *deaths]
    merged: list[IndexEvent] = []
    while any(ordered):
        for partition in ordered:
            if partition:
                merged.append(partition.pop(0))
    return merged


def _apply_all(store: IndexStore, events: Sequence[IndexEvent], batch: int, start: threading.Barrier | None) -> None:
    if start is not None:
        start.wait()
    for first in range(0, len(events), batch):
        while True:
            try:
                store.apply(events[first : first + batch])
                break
            except Exception as exc:
                if transient_reason(exc) is None:
                    raise


def _state(engine: Engine) -> tuple[object, ...]:
    with engine.connect() as conn:
        held = sorted(
            tuple(r)
            for r in conn.execute(
                select(records.c.dataset, records.c.entity_key, records.c.entity_version, records.c.event_id)
            )
        )
        linked = Counter(
            tuple(r)
            for r in conn.execute(
                select(links.c.dataset, links.c.entity_key, links.c.relation, links.c.party_id, links.c.share)
            )
        )
        told = sorted(
            tuple(r) for r in conn.execute(select(notified.c.consumer, notified.c.event_id, notified.c.party_id))
        )
        queued: Counter[tuple[str, str]] = Counter()
        for consumer, message in conn.execute(select(notify_outbox.c.consumer, notify_outbox.c.message)):
            body = json.loads(message)
            body.pop("applied_ms")
            queued[(consumer, json.dumps(body, sort_keys=True))] += 1
    return held, linked, told, queued


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_overlapping_concurrent_workers_equal_a_serial_one(index_url: str, tmp_path: Path) -> None:
    stories = [_story(i) for i in range(PEOPLE)]
    subscriptions = load_subscriptions()
    first = _interleaved([list(p) for s in stories for p in s], death_first=False)
    second = _interleaved([list(p) for s in reversed(stories) for p in s], death_first=True)
    serial = index_engine(f"sqlite:///{tmp_path / 'serial.db'}")
    upgrade(serial)
    _apply_all(IndexStore(serial, subscriptions), first, 5, None)
    expected = _state(serial)
    assert len(expected[2]) == PEOPLE, "every death of an owner notifies revenue once"

    engine = index_engine(index_url)
    drop_all(engine)
    upgrade(engine)
    _slow_writes(engine)
    for round_ in range(ROUNDS):
        with engine.begin() as conn:  # emptied, not rebuilt: fifteen migrations cost most of the test
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY")
            else:
                for table in reversed(metadata.sorted_tables):
                    conn.execute(table.delete())
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(events: list[IndexEvent], batch: int, start: threading.Barrier, errors: list[BaseException]) -> None:
            try:
                _apply_all(IndexStore(engine, subscriptions), events, batch, start)
            except BaseException as exc:  # noqa: BLE001 — reported by the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(first, 3 + round_ % 4, start, errors)),
            threading.Thread(target=run, args=(second, 4 + round_ % 3, start, errors)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == [], f"round {round_}: {errors[0]!r}"
        assert _state(engine) == expected, f"round {round_}"
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP FUNCTION slow_write() CASCADE")
    engine.dispose()
