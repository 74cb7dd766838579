"""No valid input stops the worker: a record the index refuses is found by bisection and
dead-lettered, and a transient refusal is retried for as long as it lasts, visibly.

The refusals are the real database's own: a trigger raises them on SQLite and on PostgreSQL, so
the errors are what the drivers really raise (IntegrityError, DataError, SerializationFailure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from linkage.database import index_engine
from linkage.index_store import IndexStore
from linkage.migrate import upgrade
from linkage.subscriptions import load_subscriptions
from linkage.tables import records
from monitoring import metrics
from monitoring.health_server import Readiness
from streams.pipeline import DEAD_LETTER, Pipeline, SourceRecord
from streams.worker_core import CONTENTION_PATIENCE, WorkerCore
from tests.support.linkage_support import CATALOG, decoded_record, on_wire
from tests.support.recording_sink import RecordingSink, recording_notifier
from tests.support.schema_helpers import schema_by_id
from tests.support.signing_support import UNSIGNED_ACCEPTED

TOPICS = {"gdx.dlt.vehicle.v1": "dlt.vehicle", "gdx.dopa.death.v1": "dopa.death", "gdx.dopa.person.v1": "dopa.person"}
TOPIC_OF = {dataset: topic for topic, dataset in TOPICS.items()}

_PG_REFUSE = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE code text;
BEGIN
  IF NEW.dataset = 'dopa.death' THEN
    RAISE EXCEPTION 'value too long for the column' USING ERRCODE = 'string_data_right_truncation';
  END IF;
  SELECT sqlstate INTO code FROM outage LIMIT 1;
  IF code IS NOT NULL THEN
    RAISE EXCEPTION 'the index is refusing writes for now' USING ERRCODE = code;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION refuse();
"""
_SQLITE_REFUSE = (
    "CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.dataset = 'dopa.death' "
    "BEGIN SELECT RAISE(ABORT, 'value too long for the column'); END"
)


@pytest.fixture
def engine(index_url: str) -> Iterator[Engine]:
    engine = index_engine(index_url)
    upgrade(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("CREATE TABLE outage (sqlstate TEXT)")
            conn.exec_driver_sql(_PG_REFUSE)
        else:
            conn.exec_driver_sql(_SQLITE_REFUSE)
    yield engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE outage; DROP FUNCTION refuse() CASCADE")
    engine.dispose()


def _core(engine: Engine, sink: RecordingSink, readiness: Readiness | None = None) -> WorkerCore:
    return WorkerCore(
        Pipeline(CATALOG, IndexStore(engine, load_subscriptions()), TOPICS, UNSIGNED_ACCEPTED, schema_by_id),
        sink,
        {t: f"gdx.dlq.{t}" for t in TOPICS},
        recording_notifier(engine),
        readiness or Readiness(),
    )


def _record(dataset: str, offset: int, **changes: object) -> SourceRecord:
    return SourceRecord(TOPIC_OF[dataset], 0, offset, b"k", on_wire(dataset, decoded_record(dataset, **changes)))


def _held(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(records)).scalar_one()


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_record_the_index_refuses_is_dead_lettered_and_the_rest_applied(engine: Engine) -> None:
    sink = RecordingSink()
    before = metrics.EVENTS_DEAD_LETTERED.labels(agency="dopa", dataset="death", reason="apply_failed")._value.get()
    batch = [
        _record("dlt.vehicle", 0),
        _record("dopa.person", 1),
        _record("dopa.death", 2),
        SourceRecord(TOPIC_OF["dlt.vehicle"], 0, 3, b"k", b"garbage"),
        _record("dlt.vehicle", 4, version=2),
    ]
    result = await _core(engine, sink).handle(batch)
    assert result.outcomes == ["applied", "applied", DEAD_LETTER, DEAD_LETTER, "applied"]
    assert _held(engine) == 2
    refused = dict(sink.sent[0][3])
    assert [topic for topic, *_ in sink.sent] == ["gdx.dlq.gdx.dopa.death.v1", "gdx.dlq.gdx.dlt.vehicle.v1"]
    assert refused["gdx-dlq-reason"] == b"apply-failed" and refused["gdx-source-offset"] == b"2"
    assert b"value too long" in refused["gdx-dlq-detail"] and b"[parameters" not in refused["gdx-dlq-detail"]
    assert (
        metrics.EVENTS_DEAD_LETTERED.labels(agency="dopa", dataset="death", reason="apply_failed")._value.get()
        == before + 1
    )


@pytest.mark.parametrize("index_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("sqlstate", "reason"),
    [("40001", "contention"), ("40P01", "contention"), ("55P03", "contention"), ("53000", "unavailable")],
)
async def test_a_transient_refusal_is_retried_until_it_passes_and_shows_in_readiness(
    engine: Engine, sqlstate: str, reason: str
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO outage VALUES ('{sqlstate}')")
    readiness = Readiness()
    counter = metrics.INDEX_WRITE_RETRIES.labels(reason=reason)
    retries = counter._value.get()
    handled = asyncio.create_task(_core(engine, RecordingSink(), readiness).handle([_record("dlt.vehicle", 0)]))
    for _ in range(400):
        if counter._value.get() >= retries + CONTENTION_PATIENCE:
            break
        await asyncio.sleep(0.05)
    assert not handled.done()
    assert "index" in readiness.failing()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM outage")
    result = await asyncio.wait_for(handled, 30)
    assert result.outcomes == ["applied"] and readiness.failing() == {}


@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_fault_of_the_index_itself_never_dead_letters_the_batch(engine: Engine) -> None:
    """A missing table refuses every record alike: a broken deployment, not bad data. PostgreSQL
    names it (undefined table), so the batch is raised and re-delivered after a restart; SQLite
    reports it like an unreachable file, so the worker waits for it, not ready. Neither bisects the
    batch into the dead letters."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE links")
    sink = RecordingSink()
    readiness = Readiness()
    handled = asyncio.create_task(
        _core(engine, sink, readiness).handle([_record("dlt.vehicle", 0), _record("dopa.person", 1)])
    )
    if engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="links"):
            await asyncio.wait_for(handled, 30)
    else:
        for _ in range(100):
            if "index" in readiness.failing():
                break
            await asyncio.sleep(0.05)
        assert "links" in readiness.failing()["index"] and not handled.done()
        handled.cancel()
    assert sink.sent == [] and _held(engine) == 0
