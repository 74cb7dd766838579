"""The pipeline and the worker's batch handling, without a broker: a recording sink at the seam
the Kafka producer fills in production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.migrate import upgrade
from linkage.subscriptions import load_subscriptions
from linkage.tables import access_log
from monitoring import metrics
from monitoring.health_server import Readiness
from schemas.examples import MALEE, SOMCHAI
from streams.pipeline import DEAD_LETTER, TOMBSTONE, Pipeline, SourceRecord
from streams.worker_core import WorkerCore
from tests.support.linkage_support import CATALOG, decoded_record, on_wire
from tests.support.recording_sink import RecordingAudit, RecordingSink, recording_notifier
from tests.support.schema_helpers import schema_by_id
from tests.support.signing_support import UNSIGNED_ACCEPTED

TOPICS = {"gdx.dlt.vehicle.v1": "dlt.vehicle", "gdx.dopa.death.v1": "dopa.death", "gdx.dopa.person.v1": "dopa.person"}


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    engine = index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    return Pipeline(CATALOG, IndexStore(engine, load_subscriptions()), TOPICS, UNSIGNED_ACCEPTED, schema_by_id)


def _record(topic: str, value: bytes | None, offset: int = 0) -> SourceRecord:
    return SourceRecord(topic, 0, offset, b"k", value, (("traceparent", b"00-abc"),))


def _valid(dataset: str, **changes: object) -> bytes:
    return on_wire(dataset, decoded_record(dataset, **changes))


def test_each_bad_input_becomes_a_dead_letter_with_its_reason(pipeline: Pipeline) -> None:
    good = _valid("dlt.vehicle")
    unknown_id = b"\x00" + (99_999).to_bytes(4, "big") + good[5:]
    person_on_vehicle_topic = _valid("dopa.person")
    cases = {
        "not-wire-framed": b'{"json": true}',
        "unknown-schema-id": unknown_id,
        "body-mismatch": good[:-7],
        "schema-mismatch": person_on_vehicle_topic,
    }
    record = decoded_record("dlt.vehicle")
    record["references"]["citizen_ids"] = [SOMCHAI[:-1] + str((int(SOMCHAI[-1]) + 1) % 10)]
    cases["domain-rule"] = on_wire("dlt.vehicle", record)
    batch = [_record("gdx.dlt.vehicle.v1", value, i) for i, value in enumerate(cases.values())]
    batch.append(_record("gdx.dlt.vehicle.v1", good, 99))
    result = pipeline.process(batch)
    assert result.outcomes == [DEAD_LETTER] * len(cases) + ["applied"]
    assert [d.reason for d in result.dead_letters] == list(cases)
    first = dict(result.dead_letters[0].headers())
    assert first["traceparent"] == b"00-abc" and first["gdx-dlq-reason"] == b"not-wire-framed"
    assert first["gdx-source-topic"] == b"gdx.dlt.vehicle.v1" and first["gdx-source-offset"] == b"0"


def test_tombstones_are_skipped_and_duplicates_recognised(pipeline: Pipeline) -> None:
    value = _valid("dlt.vehicle")
    result = pipeline.process(
        [
            _record("gdx.dlt.vehicle.v1", value),
            _record("gdx.dlt.vehicle.v1", None),
            _record("gdx.dlt.vehicle.v1", value),
        ]
    )
    assert result.outcomes == ["applied", TOMBSTONE, "duplicate"]


async def test_worker_sends_dead_letters_and_notifications_and_counts(pipeline: Pipeline) -> None:
    sink, audit = RecordingSink(), RecordingAudit()
    core = WorkerCore(
        pipeline, sink, {t: f"gdx.dlq.{t}" for t in TOPICS}, recording_notifier(pipeline.store.engine, audit)
    )
    applied = metrics.EVENTS_APPLIED.labels(agency="dopa", dataset="death")._value.get()
    dead = metrics.EVENTS_DEAD_LETTERED.labels(agency="dlt", dataset="vehicle", reason="undecodable")._value.get()
    await core.handle(
        [
            _record("gdx.dlt.vehicle.v1", _valid("dlt.vehicle")),
            _record("gdx.dopa.person.v1", _valid("dopa.person")),
            _record("gdx.dlt.vehicle.v1", b"garbage", 7),
        ]
    )
    await core.handle(
        [_record("gdx.dopa.death.v1", _valid("dopa.death", citizen_id=SOMCHAI, informant_citizen_id=MALEE))]
    )
    topics = [topic for topic, *_ in sink.sent]
    assert topics == ["gdx.dlq.gdx.dlt.vehicle.v1", "gdx.notify.revenue"]
    assert sink.sent[0][2] == b"garbage" and sink.sent[1][1] == SOMCHAI.encode()
    assert pipeline.store.notifications() == []
    [entry] = audit.entries
    assert (entry["operation"], entry["purpose"], entry["decision"]) == ("notify", "estate-notice", "allow")
    assert entry["subject"] == {"kind": "citizen", "id": SOMCHAI} and entry["datasets"] == ["dlt.vehicle", "dopa.death"]
    notice = json.loads(sink.sent[1][2])
    assert notice["notice_id"] == entry["request_id"] and "entity_key" not in notice, "estate-notice lists no keys"
    assert notice["linked"] == [{"dataset": "dlt.vehicle", "relation": "possesses"}], "the chassis number is left out"
    [row] = _access_log(pipeline.store.engine)
    assert (row["operation"], row["request_id"], row["audit_offset"]) == ("notify", entry["request_id"], 0)
    assert metrics.EVENTS_APPLIED.labels(agency="dopa", dataset="death")._value.get() == applied + 1
    assert (
        metrics.EVENTS_DEAD_LETTERED.labels(agency="dlt", dataset="vehicle", reason="undecodable")._value.get()
        == dead + 1
    )


def _access_log(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(access_log).order_by(access_log.c.id)).mappings()]


async def test_notices_the_audit_cannot_take_stay_queued_and_leave_once_it_can(pipeline: Pipeline) -> None:
    sink, audit, readiness = RecordingSink(), RecordingAudit(), Readiness()
    notifier = recording_notifier(pipeline.store.engine, audit)
    core = WorkerCore(pipeline, sink, {t: f"gdx.dlq.{t}" for t in TOPICS}, notifier, readiness)
    await core.handle([_record("gdx.dlt.vehicle.v1", _valid("dlt.vehicle"))])
    audit.failing = "audit trail unavailable (KafkaTimeoutError)"
    death = _valid("dopa.death", citizen_id=SOMCHAI, informant_citizen_id=MALEE)
    result = await core.handle([_record("gdx.dopa.death.v1", death)])
    assert result.outcomes == ["applied"], "the index goes on while notices wait"
    assert sink.sent == [] and len(pipeline.store.notifications()) == 1 and _access_log(pipeline.store.engine) == []
    assert "notices held in the outbox" in readiness.failing()["notifications"]
    audit.failing = None
    assert await core.send_notifications() == 1
    assert [topic for topic, *_ in sink.sent] == ["gdx.notify.revenue"] and readiness.failing() == {}
    assert len(audit.entries) == 1 and len(_access_log(pipeline.store.engine)) == 1
