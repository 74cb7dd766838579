"""`gdx index rebuild` restores what the topics hold and destroys nothing they do not: used-up
one-time consents, the data subjects' access log, unsent notifications and the marks of who was
told, against the real broker and on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from linkage.database import index_engine
from linkage.migrate import copy_kept, upgrade
from linkage.tables import KEPT_TABLES, access_log, consent_revocations, consents, notified, notify_outbox
from schemas.examples import SOMCHAI
from tests.support.linkage_support import decoded_record, encode
from tests.support.registry_support import framed
from tests.support.stream_harness import Backbone, produce

pytestmark = pytest.mark.kafka

_KEPT_ROWS = {
    consents: {
        "consent_id": "c-1",
        "subject_id": SOMCHAI,
        "consumer": "revenue",
        "purpose": "tax-assessment",
        "datasets": '["dlt.vehicle"]',
        "kind": "one-time",
        "granted_ms": 1,
        "expires_ms": 2**40,
        "revoked_ms": None,
        "used_ms": 5,
        "applied_ms": 2,
    },
    access_log: {
        "subject_id": SOMCHAI,
        "request_id": str(uuid.uuid4()),
        "time_ms": 5,
        "consumer": "revenue",
        "purpose": "tax-assessment",
        "operation": "lookup",
        "datasets": '["dlt.vehicle"]',
        "decision": "allow",
        "reason": None,
        "audit_partition": 0,
        "audit_offset": 7,
    },
    consent_revocations: {"consent_id": "c-revoked", "revoked_ms": 4, "applied_ms": 5},
    notify_outbox: {"consumer": "revenue", "message_key": SOMCHAI, "message": "{}", "created_ms": 5},
    notified: {"consumer": "revenue", "event_id": str(uuid.uuid4()), "party_id": SOMCHAI, "notified_ms": 5},
}


def _kept(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(row) for row in conn.execute(select(t))) for t in KEPT_TABLES}


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_a_rebuild_keeps_what_no_topic_holds(bootstrap_servers: str, tmp_path: Path, index_url: str) -> None:
    backbone = Backbone(bootstrap_servers, f"b{uuid.uuid4().hex[:8]}.", tmp_path / "state", index_url)
    assert backbone.gdx("topics", "apply").code == 0
    vehicle = decoded_record("dlt.vehicle")
    topic = f"{backbone.prefix}gdx.dlt.vehicle.v1"
    value = framed(topic, encode("dlt.vehicle", vehicle))
    asyncio.run(
        produce(
            bootstrap_servers,
            topic,
            [(vehicle["entity_key"].encode(), value, backbone.signed("dlt", value))],
        )
    )
    first = backbone.gdx("index", "rebuild")  # the live index was empty: "differs", and now holds the topics
    assert "applied 1" in first.out, first.out + first.err
    live = index_engine(index_url)
    with live.begin() as conn:
        for table, row in _KEPT_ROWS.items():
            conn.execute(insert(table), [row])
    kept = _kept(live)

    rebuilt = backbone.gdx("index", "rebuild")
    assert rebuilt.code == 0 and "identical" in rebuilt.out, rebuilt.out + rebuilt.err
    assert _kept(live) == kept

    other = f"sqlite:///{tmp_path / 'other.db'}"
    into = backbone.gdx("index", "rebuild", "--into", other)
    assert into.code == 0 and "identical" in into.out, into.out + into.err
    assert _kept(index_engine(other)) == kept
    live.dispose()


@pytest.mark.parametrize("index_url", ["sqlite"], indirect=True)
def test_the_digest_covers_what_a_rebuild_keeps(bootstrap_servers: str, tmp_path: Path, index_url: str) -> None:
    backbone = Backbone(bootstrap_servers, f"b{uuid.uuid4().hex[:8]}.", tmp_path / "state", index_url)
    before = backbone.gdx("index", "digest").out
    with index_engine(index_url).begin() as conn:
        conn.execute(insert(notified), [_KEPT_ROWS[notified]])
    assert backbone.gdx("index", "digest").out != before


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
def test_the_kept_tables_carried_into_a_fresh_index_go_on_from_their_ids(tmp_path: Path, index_url: str) -> None:
    live = index_engine(f"sqlite:///{tmp_path / 'live.db'}")
    upgrade(live)
    with live.begin() as conn:
        for table, row in _KEPT_ROWS.items():
            conn.execute(insert(table), [row])
    target = index_engine(index_url)
    upgrade(target)
    copy_kept(live, target)
    assert _kept(target) == _kept(live)
    with target.begin() as conn:
        conn.execute(insert(notify_outbox), [_KEPT_ROWS[notify_outbox]])
        conn.execute(insert(access_log), [{**_KEPT_ROWS[access_log], "request_id": str(uuid.uuid4())}])
    assert len(_kept(target)["notify_outbox"]) == 2 and len(_kept(target)["access_log"]) == 2
    target.dispose()
