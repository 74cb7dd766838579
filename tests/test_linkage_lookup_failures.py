"""No failure inside a request is a bare 500: the real SQLite index is made to fail where the API
reads or writes it (a table gone, a trigger refusing a write), and each request still gets its
documented error body, audited; the access-log writer outlives such a failure and keeps its rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from aiokafka.admin import NewTopic
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from linkage.audit import AUDIT_TOPIC
from linkage.database import index_engine
from linkage.lookup_service import AccessLogWriter
from linkage.migrate import upgrade
from linkage.tables import access_log
from schemas.examples import SOMCHAI
from streams.settings import Settings
from tests.support.lookup_support import (
    PROBLEM_KEYS,
    administer,
    audited,
    consent,
    create_lookup_topics,
    fill_index,
    get,
    granted,
    lookup_client,
    lookup_settings,
    publish,
    subject_token,
    wait_until,
)

PERSON = f"/v1/citizens/{SOMCHAI}"


@pytest.fixture
def lookup(settings: Settings, index_url: str) -> Iterator[tuple[Settings, TestClient]]:
    settings = lookup_settings(settings, index_url=index_url)
    create_lookup_topics(settings)
    fill_index(settings)
    try:
        with lookup_client(settings) as client:
            yield settings, client
    finally:
        if index_url.startswith("postgresql"):  # the next test's database is this one, emptied
            _sql(settings, "DROP TABLE IF EXISTS gone CASCADE")
            _sql(settings, "DROP FUNCTION IF EXISTS refuse() CASCADE")


def _sql(settings: Settings, statement: str) -> None:
    """Change the API's database behind its back, as another process (or a broken disk) would."""
    engine = index_engine(settings.index_database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _refusing(settings: Settings, table: str, operation: str) -> None:
    """A trigger that makes the database refuse every `operation` on `table`."""
    name = f"refuse_{operation.lower()}_{table}"
    if settings.index_database_url.startswith("sqlite"):
        _sql(
            settings,
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        return
    _sql(
        settings,
        "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    _sql(settings, f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()")


FAILURES: dict[str, tuple[Callable[[Settings], object], str, str]] = {
    # where the index fails: (break it, consumer, purpose)
    "decision": (
        lambda s: (granted(s, SOMCHAI), _sql(s, "ALTER TABLE consents RENAME TO gone")),
        "dlt",
        "licence-application",
    ),
    "read": (lambda s: _sql(s, "ALTER TABLE records RENAME TO gone"), "revenue", "estate-tax"),
    "use_up": (
        lambda s: (granted(s, SOMCHAI, "one-time"), _refusing(s, "consents", "UPDATE")),
        "dlt",
        "licence-application",
    ),
}


@pytest.mark.kafka
@pytest.mark.parametrize("index_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("where", FAILURES)
def test_an_index_failure_is_an_audited_503(lookup: tuple[Settings, TestClient], where: str) -> None:
    settings, client = lookup
    breaks, consumer, purpose = FAILURES[where]
    breaks(settings)
    answer = get(client, PERSON, consumer, purpose)
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert set(body) == PROBLEM_KEYS and body["reason"] == "unavailable"
    assert answer.headers["X-Request-Id"] == body["request_id"]
    assert audited(settings, body["request_id"])["status"] == 503


@pytest.mark.kafka
def test_the_access_log_authenticates_before_it_writes(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    _refusing(settings, "access_log", "INSERT")  # first: the writer's background flush must not take the row
    assert get(client, PERSON, "revenue", "estate-tax").status_code == 200  # queues an access-log row
    stranger = get(client, f"{PERSON}/access-log", None, "subject-access", key="not-a-key")
    assert stranger.status_code == 401, stranger.text
    assert audited(settings, stranger.json()["request_id"])["status"] == 401
    token = subject_token(settings, SOMCHAI)
    subject = get(client, f"{PERSON}/access-log", "citizen-portal", "subject-access", token=token)
    assert subject.status_code == 503, subject.text
    assert set(subject.json()) == PROBLEM_KEYS
    assert audited(settings, subject.json()["request_id"])["status"] == 503


def _row(request_id: str) -> dict[str, object]:
    return {
        "subject_id": SOMCHAI,
        "request_id": request_id,
        "time_ms": 1,
        "consumer": "revenue",
        "purpose": "estate-tax",
        "operation": "lookup",
        "datasets": "[]",
        "decision": "allow",
        "reason": None,
        "audit_partition": 0,
        "audit_offset": 0,
    }


def _written(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(access_log.c.request_id).order_by(access_log.c.id)).scalars())


def test_a_failed_access_log_flush_keeps_its_rows_and_the_writer_retries(index_url: str) -> None:
    engine = index_engine(index_url)
    upgrade(engine)
    writer = AccessLogWriter(engine, interval_s=0.01, retry_s=0.05)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER refuse_insert_access_log BEFORE INSERT ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        )

    async def outage() -> None:
        running = asyncio.create_task(writer.run())
        writer.add(_row("first"))
        while writer.error is None:
            await asyncio.sleep(0.01)
        writer.add(_row("second"))
        await asyncio.sleep(0.2)  # several failed flushes: the writer keeps trying, keeps the rows
        assert not running.done() and "2 rows kept" in (writer.error or "")
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_insert_access_log"))
        while writer.error is not None:
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(outage())
    assert _written(engine) == ["first", "second"]
    engine.dispose()


@pytest.mark.kafka
def test_the_consent_follower_outlives_a_failing_database_and_readiness_says_so(
    lookup: tuple[Settings, TestClient],
) -> None:
    settings, client = lookup
    _refusing(settings, "consents", "INSERT")
    publish(settings, consent(SOMCHAI, "dlt", "licence-application", ["dopa.person"]))
    wait_until(lambda: client.get("/readyz").status_code == 503, timeout_s=10, what="not ready")
    assert "consents" in client.get("/readyz").text
    assert get(client, PERSON, "dlt", "licence-application").status_code == 503
    _sql(settings, "DROP TRIGGER refuse_insert_consents")
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=10, what="ready again")
    assert get(client, PERSON, "dlt", "licence-application").status_code == 200


@pytest.mark.kafka
def test_the_audit_writer_outlives_a_lost_topic_and_readiness_says_so(lookup: tuple[Settings, TestClient]) -> None:
    settings, client = lookup
    topic = settings.topic(AUDIT_TOPIC)
    asyncio.run(administer(settings, lambda admin: admin.delete_topics([topic])))
    assert get(client, PERSON, "revenue", "estate-tax").status_code == 503
    assert client.get("/readyz").status_code == 503 and "audit" in client.get("/readyz").text
    asyncio.run(administer(settings, lambda admin: admin.create_topics([NewTopic(topic, 3, 1)])))
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=20, what="ready again")
    assert get(client, PERSON, "revenue", "estate-tax").status_code == 200
