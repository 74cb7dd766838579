"""Failures of the index inside the lookup service: the access-log writer outlives a database
that refuses its writes, and keeps every row."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, select, text

from linkage.database import index_engine
from linkage.lookup_service import AccessLogWriter
from linkage.migrate import upgrade
from linkage.tables import access_log
from schemas.examples import SOMCHAI


def _refusing(table: str, operation: str) -> str:
    return (f"CREATE TRIGGER refuse_{operation.lower()}_{table} BEFORE {operation} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'injected failure'); END")


def _row(request_id: str) -> dict[str, object]:
    return {"subject_id": SOMCHAI, "request_id": request_id, "time_ms": 1, "consumer": "revenue",
            "purpose": "estate-tax", "operation": "lookup", "datasets": "[]", "decision": "allow", "reason": None,
            "audit_partition": 0, "audit_offset": 0}


def _written(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(access_log.c.request_id).order_by(access_log.c.id)).scalars())


def test_a_failed_access_log_flush_keeps_its_rows_and_the_writer_retries(index_url: str) -> None:
    engine = index_engine(index_url)
    upgrade(engine)
    writer = AccessLogWriter(engine, interval_s=0.01, retry_s=0.05)
    with engine.begin() as conn:
        conn.execute(text(_refusing("access_log", "INSERT")))

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
