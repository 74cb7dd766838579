"""Engines for the linkage index: SQLite (WAL) embedded by default, PostgreSQL through a URL.

SQLite gets WAL and `synchronous=NORMAL` on every connection so the lookup service can read while
a worker writes; a busy timeout turns brief lock contention into waiting instead of errors. The
index is read by memory mapping and with a larger page cache than SQLite's 2 MiB default: at a
million persons the file is gigabytes, and each page read through a system call made the kernel,
not the pipeline, the busiest part of a rebuild.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from foundation.errors import GdxError

MMAP_BYTES = 2 << 30
"""SQLite's own ceiling by default. Address space only: the pages are the operating system's file
cache, shared by every connection."""
CACHE_KIB = 64 << 10
"""Per connection, allocated as it fills."""


CONTENTION = "contention"
UNAVAILABLE = "unavailable"
TRANSIENT_REASONS = (CONTENTION, UNAVAILABLE)
"""Why a write may succeed if simply tried again: it lost to a concurrent transaction (a
serialization failure, a deadlock, a lock it could not get), or the database is briefly out of
reach (connection lost, out of resources, shutting down, a statement timeout)."""
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
_CONTENTION_SQLSTATES = frozenset({"55P03"})  # lock_not_available, besides class 40 (transaction rollback)


def transient_reason(exc: BaseException) -> str | None:
    """CONTENTION or UNAVAILABLE when the same write may succeed if tried again, else None: the
    worker waits out a transient error for as long as it lasts, while any other one marks data the
    index cannot take."""
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return UNAVAILABLE
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        if sqlstate[:2] == "40" or sqlstate in _CONTENTION_SQLSTATES:
            return CONTENTION
        return UNAVAILABLE if sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES else None
    if isinstance(exc, OperationalError) and ("locked" in str(exc.orig) or "busy" in str(exc.orig)):
        return CONTENTION  # SQLite: another connection holds the write lock
    return UNAVAILABLE if isinstance(exc, (OperationalError, InterfaceError)) else None


_DATA_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""Data exception and integrity constraint violation: the rows, not the database, are at fault."""


def refuses_the_data(exc: BaseException) -> bool:
    """True when the database refused these rows for what they hold (too long, out of range, a
    constraint), so some record of the batch cannot be applied while the others can. Anything else
    — a missing table, a bug, an unknown failure — is about the index or the code, and dead-letter
    hunting would empty the stream into the dead-letter topics instead of stopping for a person."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _DATA_SQLSTATE_CLASSES
    return isinstance(exc, (DataError, IntegrityError))


def error_text(exc: BaseException) -> str:
    """The database's own message, without the statement and parameters SQLAlchemy appends: those
    hold a batch's personal data, which belongs in no log line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(cause).__name__}: {cause}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cursor.close()


def defer_checkpoints(engine: Engine) -> None:
    """SQLite: this engine's connections leave the WAL to `checkpoint`, called on a timer, instead of
    copying it back into the database inside whichever commit crosses a thousand pages — the
    stream worker's commits, a batch's worth of work held up by the copy. Other processes' own
    connections keep checkpointing as before."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _no_autocheckpoint)


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def checkpoint(engine: Engine) -> None:
    """Copy the WAL back into an SQLite database as far as no reader needs it (PASSIVE: it waits
    for nobody, and a writer goes on meanwhile); nothing on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def without_password(url: str) -> str:
    """The URL as it may be shown: a malformed one too, so what sits between `user:` and `@` goes."""
    return re.sub(r"(//[^/:@]*:)[^/]*@", r"\1***@", url)


def index_engine(url: str) -> Engine:
    """An engine for `url`; PostgreSQL URLs use psycopg 3 unless they name a driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise GdxError(
            f"index URL {without_password(url)!r} is not a database URL",
            "use sqlite:///path/index.db or postgresql://user@host:port/db",
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise GdxError(f"index database {parsed.get_backend_name()!r} is not supported", "use SQLite or PostgreSQL")
    # psycopg prepares a statement run five times, and PostgreSQL then keeps a generic plan made
    # while the index was still empty: sequential scans under the worker's IN lists, each batch
    # slower than the last (a 42,000-event load applied at 450 µs an event instead of 175).
    # Custom plans are made with the parameters and the tables as they are.
    return create_engine(parsed, pool_pre_ping=True, connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
