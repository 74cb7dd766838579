"""A batch's transaction on the index, serial among the workers that share it.

Workers sharing an SQLite index (`gdx up --workers 2`) each apply a batch in one transaction, and
SQLite lets one connection write at a time. Left to the driver, a transaction begins only at its
first write, after the batch has read which events it already holds and at which versions: two
workers could both read before either wrote. And a writer that finds the lock taken sleeps in
steps growing to 100 ms however soon the lock is free, which cost the second worker more than it
added. So on SQLite a batch first takes an exclusive lock on a file beside the database, which the
kernel hands to the next waiter the moment it is released (and frees when its holder dies), then
begins IMMEDIATE: its reads and writes are one transaction, in a serial order. PostgreSQL runs
concurrent batches as SERIALIZABLE transactions instead (`linkage.index_store`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def batch_transaction(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _one_writer(engine.url.database), engine.begin() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


@contextmanager
def _one_writer(database: str | None) -> Iterator[None]:
    """The exclusive flock on `<database>-writer`; none for an in-memory database, which has one
    connection and nobody to wait for."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
