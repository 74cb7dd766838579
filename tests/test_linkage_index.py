"""The linkage index on SQLite and on a real PostgreSQL: exactly-once effect, links, views, digest."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, func, insert, select

from linkage import pending_links
from linkage.database import index_engine
from linkage.digest import index_digest
from linkage.index_event import IndexEvent
from linkage.index_store import APPLIED, DUPLICATE, STALE, IndexStore
from linkage.migrate import drop_all, migration_config, upgrade
from linkage.subscriptions import load_subscriptions
from linkage.tables import access_log, links, metadata, notify_outbox, records, version_gaps
from linkage.views import party_view, record_view
from schemas.errors import CodecError
from schemas.examples import KRUNG_BANK, MALEE, SIAM_TRADING, SOMCHAI
from tests.support.linkage_support import DATASET_OF, index_event

ALL_DATASETS = sorted(DATASET_OF.values())


pytestmark = pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)


def test_migrations_build_exactly_the_declared_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_every_dataset_applies_and_links_its_parties(engine: Engine) -> None:
    store = IndexStore(engine)
    result = store.apply([index_event(dataset) for dataset in ALL_DATASETS])
    assert result.outcomes == [APPLIED] * len(ALL_DATASETS)
    vehicle = record_view(engine, "dlt.vehicle", "MR0FZ29G201234567")
    assert vehicle is not None
    assert {(p["relation"], p["id"]) for p in vehicle["parties"]} == {("owns", KRUNG_BANK), ("possesses", SOMCHAI)}
    assert vehicle["provenance"]["agency"] == "DLT" and vehicle["provenance"]["dataset_code"] == 30
    deed = record_view(engine, "dol.title-deed", "12-45872")
    assert deed is not None
    assert {(p["relation"], p["id"], p["share"]) for p in deed["parties"]} >= {
        ("owns-share-of", SOMCHAI, "1/2"),
        ("owns-share-of", MALEE, "1/2"),
    }


def test_redelivery_and_older_versions_change_nothing(engine: Engine) -> None:
    store = IndexStore(engine)
    v2 = index_event("dlt.vehicle", version=2, colour="แดง")
    v1 = index_event("dlt.vehicle", version=1, colour="ขาว")
    assert store.apply([v2]).outcomes == [APPLIED]
    before = index_digest(engine)
    assert store.apply([v2, v1, v2]).outcomes == [DUPLICATE, STALE, DUPLICATE]
    assert index_digest(engine) == before
    view = record_view(engine, "dlt.vehicle", "MR0FZ29G201234567")
    assert view is not None and view["payload"]["colour"] == "แดง" and view["provenance"]["entity_version"] == 2


def test_a_redelivered_version_since_replaced_is_stale_and_changes_nothing(engine: Engine) -> None:
    """No table remembers every event id: the record holds its version's, and a re-delivered
    version the record has passed since is stale."""
    store = IndexStore(engine)
    v1 = index_event("dlt.vehicle", version=1, colour="ขาว")
    v2 = index_event("dlt.vehicle", version=2, colour="แดง")
    assert store.apply([v1, v2]).outcomes == [APPLIED, APPLIED]
    before = index_digest(engine)
    assert store.apply([v1, v2]).outcomes == [STALE, DUPLICATE]
    assert index_digest(engine) == before


def test_a_skipped_version_is_applied_and_its_gap_recorded(engine: Engine) -> None:
    store = IndexStore(engine)
    result = store.apply([index_event("dlt.driving-licence", 1), index_event("dlt.driving-licence", 3)])
    assert result.outcomes == [APPLIED, APPLIED] and result.gaps == 1
    with engine.connect() as conn:
        gap = conn.execute(select(version_gaps.c.held_version, version_gaps.c.applied_version)).one()
    assert tuple(gap) == (1, 3)


def test_order_within_and_across_batches_gives_the_same_index(engine: Engine, tmp_path: Path) -> None:
    events = [index_event("dlt.vehicle", v, colour=c) for v, c in ((1, "ขาว"), (2, "ดำ"), (3, "เทา"))]
    IndexStore(engine).apply([events[2], events[0], events[1]])
    other = index_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    for event in events:
        IndexStore(other).apply([event])
    assert index_digest(engine) == index_digest(other)


def test_delete_removes_the_record_from_views_and_its_links(engine: Engine) -> None:
    store = IndexStore(engine)
    store.apply([index_event("dlt.driving-licence", 1)])
    store.apply([index_event("dlt.driving-licence", 2, change_type="DELETE")])
    assert record_view(engine, "dlt.driving-licence", "63001234") is None
    assert index_digest(engine)[1:] == (0, 0)


def test_pending_links_resolve_when_the_party_arrives(engine: Engine) -> None:
    store = IndexStore(engine)
    store.apply([index_event("dlt.driving-licence")])
    pending = store.pending_links()
    assert pending["dlt.driving-licence"][0] == 1
    store.apply([index_event("dopa.person")])
    assert "dlt.driving-licence" not in store.pending_links()


def test_pending_links_follow_the_parties_and_records_that_change(engine: Engine) -> None:
    store = IndexStore(engine)
    store.apply([index_event("dopa.person"), index_event("dlt.driving-licence")])
    assert "dlt.driving-licence" not in store.pending_links()
    store.apply([index_event("dopa.person", 2, change_type="DELETE")])
    assert store.pending_links()["dlt.driving-licence"][0] == 1  # its holder's record is gone again
    store.apply([index_event("dlt.driving-licence", 2, change_type="DELETE")])
    assert store.pending_links() == {}


def test_tracked_pending_links_equal_a_search_of_every_link_after_each_batch(engine: Engine) -> None:
    """Records naming a party before it arrives, the party deleted, back, deleted and back within
    one batch: the pending set a batch keeps is what a search of all links finds."""
    store = IndexStore(engine)
    batches = [
        [index_event("dlt.driving-licence"), index_event("dol.title-deed")],
        [index_event("dopa.person")],
        [index_event("dopa.person", 2, change_type="DELETE"), index_event("dlt.vehicle")],
        [index_event("dopa.person", 3), index_event("dlt.driving-licence", 2, change_type="DELETE")],
        [index_event("dopa.person", 4, change_type="DELETE"), index_event("dol.title-deed", 2)],
        [index_event("dopa.person", 5, change_type="DELETE"), index_event("dopa.person", 6)],
    ]
    for number, batch in enumerate(batches):
        store.apply(batch)
        with engine.begin() as conn:
            tracked = _pending_rows(conn)
            pending_links.recompute(conn)
            assert tracked == _pending_rows(conn), f"after batch {number}"


def _pending_rows(conn: Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.exec_driver_sql("SELECT * FROM pending_links ORDER BY link_id")]


def test_a_replay_that_finds_pending_links_at_its_end_finds_what_tracking_would(engine: Engine) -> None:
    events = [index_event("dlt.driving-licence"), index_event("dol.title-deed"), index_event("dopa.person")]
    tracked = IndexStore(engine)
    tracked.apply(events, applied_ms=1_000)
    expected = tracked.pending_links()
    assert expected
    drop_all(engine)
    upgrade(engine)
    IndexStore(engine, track_pending=False).apply(events, applied_ms=1_000)
    with engine.begin() as conn:
        pending_links.recompute(conn)
    assert IndexStore(engine).pending_links() == expected


def test_the_migration_finds_the_pending_links_an_index_already_holds(index_url: str) -> None:
    engine = index_engine(index_url)
    drop_all(engine)
    with engine.begin() as connection:
        command.upgrade(migration_config(connection), "0003")
        connection.execute(
            insert(links),
            [
                {
                    "dataset": "dlt.vehicle",
                    "entity_key": "V1",
                    "relation": "possessor",
                    "party_kind": "citizen",
                    "party_id": SOMCHAI,
                    "share": None,
                    "linked_ms": 5,
                },
                {
                    "dataset": "dlt.vehicle",
                    "entity_key": "V1",
                    "relation": "lives_at",
                    "party_kind": "house",
                    "party_id": "10010000001",
                    "share": None,
                    "linked_ms": 7,
                },
            ],
        )
    upgrade(engine)
    assert IndexStore(engine).pending_links() == {"dlt.vehicle": (2, 5)}


def test_a_death_shows_on_every_view_linked_to_the_person(engine: Engine) -> None:
    store = IndexStore(engine)
    store.apply([index_event(d) for d in ("dopa.person", "dlt.vehicle", "dol.title-deed", "dbd.juristic-person")])
    somchai = party_view(engine, "citizen", SOMCHAI)
    assert somchai is not None and somchai["status"] == "ACTIVE"
    store.apply([index_event("dopa.death", citizen_id=SOMCHAI, informant_citizen_id=MALEE)])
    for dataset, key in (("dlt.vehicle", "MR0FZ29G201234567"), ("dol.title-deed", "12-45872")):
        view = record_view(engine, dataset, key)
        assert view is not None
        assert [p["status"] for p in view["parties"] if p["id"] == SOMCHAI] == ["DECEASED"]
    somchai = party_view(engine, "citizen", SOMCHAI)
    assert somchai is not None and somchai["status"] == "DECEASED"
    assert {item["dataset"] for item in somchai["linked"]} >= {"dlt.vehicle", "dol.title-deed", "dbd.juristic-person"}


def test_a_dissolution_shows_on_the_records_naming_the_business(engine: Engine) -> None:
    store = IndexStore(engine)
    owner = {"kind": "JURISTIC_PERSON", "id": SIAM_TRADING, "name": "สยามเทรดดิ้ง"}
    store.apply([index_event("dbd.juristic-person", 1), index_event("dlt.vehicle", owner=owner)])
    store.apply([index_event("dbd.juristic-person", 2, status="DISSOLVED")])
    company = party_view(engine, "juristic", SIAM_TRADING)
    assert company is not None and company["status"] == "DISSOLVED"
    vehicle = record_view(engine, "dlt.vehicle", "MR0FZ29G201234567")
    assert vehicle is not None
    assert [p["status"] for p in vehicle["parties"] if p["relation"] == "owns"] == ["DISSOLVED"]


def test_a_death_of_an_owner_is_queued_for_the_subscribed_consumer(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([index_event("dopa.person"), index_event("dlt.vehicle")])
    result = store.apply([index_event("dopa.death", citizen_id=SOMCHAI, informant_citizen_id=MALEE)])
    assert result.notifications == 1
    [(_, consumer, key, message)] = store.notifications()
    body = json.loads(message)
    assert consumer == "revenue" and key == SOMCHAI
    assert body["linked"] == [{"dataset": "dlt.vehicle", "entity_key": "MR0FZ29G201234567", "relation": "possesses"}]
    [(outbox_id, *_)] = store.notifications()
    row = {
        "subject_id": SOMCHAI,
        "request_id": body["notice_id"],
        "time_ms": 1,
        "consumer": "revenue",
        "purpose": "estate-notice",
        "operation": "notify",
        "datasets": "[]",
        "decision": "allow",
        "reason": None,
        "audit_partition": 1,
        "audit_offset": 0,
    }
    store.forget_notifications([(outbox_id, row)])
    store.forget_notifications([(outbox_id, row)])  # a second worker that sent it too
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(notify_outbox)) == 0
        assert conn.scalar(select(func.count()).select_from(access_log)) == 1, "on the person's record once"


def test_snapshots_notify_nobody(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([index_event("dlt.vehicle")])
    result = store.apply(
        [index_event("dopa.death", change_type="SNAPSHOT", citizen_id=SOMCHAI, informant_citizen_id=MALEE)]
    )
    assert result.notifications == 0


DEATH_MS = 1_717_234_200_000
VEHICLE = {"dataset": "dlt.vehicle", "entity_key": "MR0FZ29G201234567", "relation": "owns"}
DEED = {"dataset": "dol.title-deed", "entity_key": "12-45872", "relation": "owns-share-of"}


def _citizen(citizen_id: str) -> dict[str, str]:
    return {"kind": "CITIZEN", "id": citizen_id, "name": "สมชาย ใจดี" if citizen_id == SOMCHAI else "มาลี ใจดี"}


def _vehicle(version: int, owner: str, at_ms: int) -> IndexEvent:
    return index_event("dlt.vehicle", version, "UPDATE", source_ms=at_ms, owner=_citizen(owner), possessor=None)


def _deed(version: int, owner: str, at_ms: int) -> IndexEvent:
    return index_event(
        "dol.title-deed",
        version,
        "UPDATE",
        source_ms=at_ms,
        mortgages=[],
        owners=[{"owner": _citizen(owner), "share_numerator": 1, "share_denominator": 1}],
    )


def _death(event_id: str | None = None) -> IndexEvent:
    return index_event(
        "dopa.death", event_id=event_id, source_ms=DEATH_MS, citizen_id=SOMCHAI, informant_citizen_id=MALEE
    )


def _revenue_notices(store: IndexStore) -> list[dict[str, Any]]:
    return [json.loads(message) for _, consumer, _, message in store.notifications() if consumer == "revenue"]


def test_a_worker_forgetting_notices_another_sent_never_drops_a_newer_one(engine: Engine) -> None:
    """Two workers drain one outbox: both read a notice, one sends and forgets it, the outbox runs
    empty and a new notice is queued; the other then forgets what it read. Outbox ids are never
    used twice, so the new notice stays queued (SQLite reused the id, and it was lost unsent)."""
    store = IndexStore(engine, load_subscriptions())
    store.apply([_vehicle(1, SOMCHAI, DEATH_MS - 9000), _death()])
    read_by_both = store.notifications()
    assert read_by_both
    store.forget_notifications([(row[0], None) for row in read_by_both])
    later = index_event(
        "dopa.death", source_ms=DEATH_MS, certificate_number="D-2", citizen_id=MALEE, informant_citizen_id=SOMCHAI
    )
    store.apply([_vehicle(2, MALEE, DEATH_MS - 5000), later])
    queued = store.notifications()
    assert queued
    store.forget_notifications([(row[0], None) for row in read_by_both])
    assert store.notifications() == queued


@pytest.mark.parametrize("death_first", [True, False], ids=["death-then-inheritance", "inheritance-then-death"])
def test_a_death_and_its_inheritance_in_one_batch_notify_with_the_estate(engine: Engine, death_first: bool) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([_vehicle(1, SOMCHAI, DEATH_MS - 9000), _deed(1, SOMCHAI, DEATH_MS - 9000)])
    inheritance = [_vehicle(2, MALEE, DEATH_MS + 500), _deed(2, MALEE, DEATH_MS + 500)]
    store.apply([_death(), *inheritance] if death_first else [*inheritance, _death()])
    [notice] = _revenue_notices(store)
    assert notice["party"] == {"kind": "citizen", "id": SOMCHAI}
    assert notice["linked"] == [VEHICLE, DEED]


@pytest.mark.parametrize("death_first", [True, False], ids=["death-then-purchase", "purchase-then-death"])
def test_a_purchase_and_the_buyers_death_in_one_batch_notify(engine: Engine, death_first: bool) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([_vehicle(1, MALEE, DEATH_MS - 9000)])
    purchase = _vehicle(2, SOMCHAI, DEATH_MS - 400)
    store.apply([_death(), purchase] if death_first else [purchase, _death()])
    assert [notice["linked"] for notice in _revenue_notices(store)] == [[VEHICLE]]


def test_a_vehicle_sold_before_the_death_notifies_nobody(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([_vehicle(1, SOMCHAI, DEATH_MS - 9000), _vehicle(2, MALEE, DEATH_MS - 400)])
    assert store.apply([_death()]).notifications == 0


# Kafka keeps order within a partition only: the worker may meet the death before, between or after
# the vehicle's versions, in one batch or several; the notice must not depend on which.
@pytest.mark.parametrize("order", ["death-first", "death-between", "death-last"])
@pytest.mark.parametrize("one_batch", [True, False], ids=["one-batch", "batch-each"])
def test_the_death_of_an_owner_notifies_once_whatever_order_it_arrives_in(
    engine: Engine, order: str, one_batch: bool
) -> None:
    store = IndexStore(engine, load_subscriptions())
    owned, inherited, death = _vehicle(1, SOMCHAI, DEATH_MS - 9000), _vehicle(2, MALEE, DEATH_MS + 500), _death()
    events = {
        "death-first": [death, owned, inherited],
        "death-between": [owned, death, inherited],
        "death-last": [owned, inherited, death],
    }[order]
    for batch in [events] if one_batch else [[event] for event in events]:
        store.apply(batch)
    [notice] = _revenue_notices(store)
    assert notice["event_id"] == death.event_id and notice["linked"] == [VEHICLE]


def test_a_death_met_before_its_pending_links_notifies_once_when_they_arrive(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions())
    death = _death()
    assert store.apply([death]).notifications == 0
    assert store.apply([_vehicle(1, SOMCHAI, DEATH_MS - 9000)]).notifications == 1
    assert store.apply([_deed(1, SOMCHAI, DEATH_MS - 9000), index_event("dopa.person")]).notifications == 0
    assert [notice["event_id"] for notice in _revenue_notices(store)] == [death.event_id]


def test_a_redelivered_death_notifies_once(engine: Engine) -> None:
    store = IndexStore(engine, load_subscriptions())
    store.apply([_vehicle(1, SOMCHAI, DEATH_MS - 9000)])
    death = _death()
    copy = _death(event_id=death.event_id)
    assert store.apply([death, copy]).outcomes[1] == DUPLICATE
    assert store.apply([copy, _vehicle(2, MALEE, DEATH_MS + 500)]).outcomes[0] == DUPLICATE
    assert len(_revenue_notices(store)) == 1


def test_payload_is_stored_as_plain_json(engine: Engine) -> None:
    IndexStore(engine).apply([index_event("dol.title-deed")])
    with engine.connect() as conn:
        payload = json.loads(conn.scalar(select(records.c.payload)))
    area = payload["land_area"]
    assert (area["rai"], area["ngan"]) == (0, 1)
    assert isinstance(area["square_wah"], str) and Decimal(area["square_wah"]) == Decimal("25.5")
    assert payload["last_transfer"]["registered_on"] == "2019-04-03"


def _accepted(dataset: str, **payload: Any) -> IndexEvent | None:
    """The event if the contract (codec and domain rules) accepts it, else None."""
    try:
        return index_event(dataset, **payload)
    except (ValueError, CodecError):
        return None


@pytest.mark.parametrize(
    "key", ["9" * 16, "9" * 61, "9" * 64, "9" * 65, "9" * 200, "12\x0034"], ids=["16", "61", "64", "65", "200", "nul"]
)
def test_every_key_the_contract_accepts_fits_the_index(engine: Engine, key: str) -> None:
    """Whatever passes validation must be writable on both databases: a key the columns cannot hold
    is a poison pill that stops the worker on PostgreSQL, so the contract rejects it instead."""
    candidates = [
        _accepted("dopa.civil-registration", registration_number=key),
        _accepted("dopa.marriage", registration_number=key),
        _accepted("dbd.commercial-registration", registration_number=key),
        *(_accepted(dataset, certificate_number=key) for dataset in ("dopa.birth", "dopa.death", "dopa.name-change")),
        _accepted("dol.title-deed", deed_number=key),
    ]
    accepted = [event for event in candidates if event is not None]
    assert IndexStore(engine).apply(accepted).outcomes == [APPLIED] * len(accepted)
    assert len(accepted) == (0 if len(key) > 64 or "\x00" in key else 6 if len(key) > 61 else 7)


@pytest.mark.parametrize("share", [2**31 - 1, 2**63 - 1])
def test_the_largest_share_the_contract_accepts_fits_the_index(engine: Engine, share: int) -> None:
    """Not a poison pill: the Avro schema carries a share's numerator and denominator as 32-bit
    ints, so the longest share is 21 characters and `links.share` (32) holds it; a 64-bit one is
    not encodable at all."""
    owners = [
        {
            "owner": {"kind": "CITIZEN", "id": SOMCHAI, "name": "สมชาย ใจดี"},
            "share_numerator": share,
            "share_denominator": share,
        }
    ]
    event = _accepted("dol.title-deed", owners=owners)
    if share >= 2**31:
        assert event is None
        return
    assert event is not None and IndexStore(engine).apply([event]).outcomes == [APPLIED]
    with engine.connect() as conn:
        assert (
            conn.execute(select(links.c.share).where(links.c.relation == "owns-share-of")).scalar()
            == f"{share}/{share}"
        )
